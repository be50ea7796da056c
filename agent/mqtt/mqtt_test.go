package mqtt

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/agent/agenttest"
	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/broker/brokertest"
	"github.com/fleetvault/fleetvault/identifiers"
)

// startOpenBroker starts a mochi broker that lets anyone do anything: the
// stranger's view, for the tests of what the transport refuses.
func startOpenBroker(t testing.TB) (string, *mochi.Server) {
	t.Helper()
	s := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := s.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "tcp", Address: "127.0.0.1:0"})
	if err := s.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return "mqtt://" + l.Address(), s
}

// env runs devices with Serve against one broker and one Transport.
type env struct {
	url      string
	tr       *Transport
	password func(device string) string

	mu      sync.Mutex
	waiting map[string]chan struct{}
}

func newEnv(t *testing.T, url string, server, serverPassword string, password func(string) string) *env {
	t.Helper()
	return newEnvOptions(t, url, TransportOptions{BrokerURL: url, Username: server, Password: serverPassword}, password)
}

func newEnvOptions(t *testing.T, url string, opts TransportOptions, password func(string) string) *env {
	t.Helper()
	tr, err := NewTransport(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	e := &env{url: url, tr: tr, password: password, waiting: map[string]chan struct{}{}}
	tr.OnOnline(e.online)
	return e
}

// online wakes AddDevice when a device announces itself.
func (e *env) online(device string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ch, ok := e.waiting[device]; ok {
		close(ch)
		delete(e.waiting, device)
	}
}

func (e *env) Transport() agent.Transport { return e.tr }

func (e *env) Unreachable(*testing.T) identifiers.ID {
	return identifiers.ID{Scheme: "mqtt", Address: "nobody-home"}
}

// AddDevice serves dev and waits for its presence announcement: then it is
// subscribed, and requests reach it.
func (e *env) AddDevice(t *testing.T, id string, dev agent.Device) identifiers.ID {
	t.Helper()
	online := make(chan struct{})
	e.mu.Lock()
	e.waiting[id] = online
	e.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- Serve(ctx, agent.NewHandler(id, dev, agent.HandlerOptions{}), DeviceOptions{BrokerURL: e.url, Password: e.password(id)})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve %s: %v", id, err)
		}
	})
	select {
	case <-online:
	case err := <-served:
		t.Fatalf("Serve %s returned before coming online: %v", id, err)
	case <-time.After(15 * time.Second):
		t.Fatalf("device %s never announced itself", id)
	}
	return identifiers.ID{Scheme: "mqtt", Address: id}
}

func TestConformanceOpenBroker(t *testing.T) {
	agenttest.Run(t, func(t *testing.T) agenttest.Env {
		url, _ := startOpenBroker(t)
		return newEnv(t, url, "fleetvault", "", func(string) string { return "" })
	})
}

// rogue connects a client that can publish anything anywhere (open broker).
func rogue(t *testing.T, url string) paho.Client {
	t.Helper()
	c := paho.NewClient(clientOptions(url, "rogue", "rogue", "", nil, 0))
	if err := connect(t.Context(), c, url); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

func publish(t *testing.T, c paho.Client, topic string, payload []byte) {
	t.Helper()
	if tok := c.Publish(topic, 1, false, payload); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
}

func encodeResponse(t *testing.T, r *agent.Response) []byte {
	t.Helper()
	b, err := agent.EncodeResponse(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRogueResponses: nothing a stranger publishes reaches a waiting call,
// and each is counted under its reason.
func TestRogueResponses(t *testing.T) {
	url, _ := startOpenBroker(t)
	e := newEnv(t, url, "fleetvault", "", func(string) string { return "" })
	dev := agenttest.NewMemDevice(agenttest.Tag(1), agent.Settings{"setpoint": 21})
	base := e.AddDevice(t, "slow", dev)
	release := dev.Hold()
	defer release()

	r := rogue(t, url)
	seen := make(chan string, 1)
	// The stranger eavesdrops on the request to learn its correlation id.
	if tok := r.Subscribe(agent.RequestTopic("slow"), 1, func(_ paho.Client, m paho.Message) {
		if req, err := agent.DecodeRequest(m.Payload()); err == nil {
			seen <- req.ID
		}
	}); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	type result struct {
		resp *agent.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := e.tr.Do(t.Context(), identifiers.ReadTag(base.Scheme, base.Address, 0), &agent.Request{})
		done <- result{resp, err}
	}()
	var id string
	select {
	case id = <-seen:
	case <-time.After(15 * time.Second):
		t.Fatal("the request never reached the eavesdropper")
	}

	forged := func(dev string) []byte {
		return encodeResponse(t, &agent.Response{ID: id, Device: dev, Tag: agenttest.Tag(666)})
	}
	publish(t, r, "fleetvault/v1/slow/res", []byte("not cbor"))                                                // malformed
	publish(t, r, "fleetvault/v1/slow/res", forged("rogue"))                                                   // device field is not the topic's
	publish(t, r, "fleetvault/v1/rogue/res", forged("rogue"))                                                  // the call went to slow
	publish(t, r, "fleetvault/v1/slow/res", encodeResponse(t, &agent.Response{ID: "guess-1", Device: "slow"})) // unknown id
	publish(t, r, "fleetvault/v1/slow/res", encodeResponse(t, &agent.Response{ID: id + "0", Device: "slow"}))  // unknown id
	publish(t, r, "fleetvault/v1/sl ow/res", encodeResponse(t, &agent.Response{ID: id, Device: "sl ow"}))      // not a device topic
	waitFor(t, "the stranger's messages to be dropped", func() bool {
		d := e.tr.Stats().Dropped
		return d[DropMalformed] == 1 && d[DropDevice] == 1 && d[DropWrongDevice] == 1 && d[DropUnknownID] == 2 && d[DropTopic] == 1
	})
	select {
	case r := <-done:
		t.Fatalf("a forged answer was delivered: %+v, %v", r.resp, r.err)
	default:
	}

	release()
	res := <-done
	if res.err != nil || res.resp.Device != "slow" || !slices.Equal(res.resp.Tag, agenttest.Tag(1)) {
		t.Fatalf("after the forgeries, the real answer: %+v, %v", res.resp, res.err)
	}
	st := e.tr.Stats()
	if st.Answered != 1 || st.Presence != 1 {
		t.Errorf("stats %+v: want 1 answered, 1 presence", st)
	}
}

// TestPresenceOnReconnect: a device announces itself again after the broker
// drops it, and answers as before.
func TestPresenceOnReconnect(t *testing.T) {
	creds := newFleetCreds(t)
	b := brokertest.Start(t, creds)
	e := newEnv(t, brokertest.URL(b), "fleetvault", "server-secret", creds.password)
	var mu sync.Mutex
	count := 0
	e.tr.OnOnline(func(d string) {
		mu.Lock()
		defer mu.Unlock()
		if d == "flaky" {
			count++
		}
	})
	base := e.AddDevice(t, "flaky", agenttest.NewMemDevice(agenttest.Tag(2), agent.Settings{}))
	// The device reconnects at once, racing the broker's cleanup of the
	// connection it kicked: the broker must keep the new one registered.
	if !b.Disconnect("flaky") {
		t.Fatal("device not connected")
	}
	waitFor(t, "a second presence announcement", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return count >= 2
	})
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	resp, err := e.tr.Do(ctx, identifiers.ReadTag(base.Scheme, base.Address, 0), &agent.Request{})
	if err != nil || resp.Err != nil {
		t.Fatalf("after reconnect: %v %v", err, resp)
	}
}

func TestOptionsRefused(t *testing.T) {
	ctx := t.Context()
	tests := []struct {
		name string
		opts TransportOptions
	}{
		{"no url", TransportOptions{}},
		{"bad scheme", TransportOptions{BrokerURL: "http://127.0.0.1:1883"}},
		{"no port", TransportOptions{BrokerURL: "mqtt://127.0.0.1"}},
		{"bad qos", TransportOptions{BrokerURL: "mqtt://127.0.0.1:1883", QoS: 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewTransport(ctx, tc.opts); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	h := agent.NewHandler("bad/id", agenttest.NewMemDevice(nil, nil), agent.HandlerOptions{})
	if err := Serve(ctx, h, DeviceOptions{BrokerURL: "mqtt://127.0.0.1:1883"}); err == nil {
		t.Error("Serve accepted a device id with '/'")
	}
}

func TestDoRefusesBadTargets(t *testing.T) {
	url, _ := startOpenBroker(t)
	e := newEnv(t, url, "fleetvault", "", func(string) string { return "" })
	for _, target := range []identifiers.ID{
		identifiers.ReadTag("coap", "home1", 5683),
		identifiers.ReadTag("mqtt", "", 0),
	} {
		if _, err := e.tr.Do(t.Context(), target, &agent.Request{}); err == nil || errors.Is(err, agent.ErrTimeout) {
			t.Errorf("Do %s: %v, want a refusal", target, err)
		}
	}
}

func TestServeStopsWhileBrokerDown(t *testing.T) {
	// Nothing listens on this port: Serve keeps retrying until cancelled.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, agent.NewHandler("d1", agenttest.NewMemDevice(nil, nil), agent.HandlerOptions{}), DeviceOptions{BrokerURL: "mqtt://127.0.0.1:1", ConnectTimeout: time.Second})
	}()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v, want nil after cancel", err)
	}
}

// fleetCreds admits the server "fleetvault" and every device added to it,
// all sharing one password hash (argon2id is slow on purpose).
type fleetCreds struct {
	server, device string // password hashes
	mu             sync.Mutex
	devices        map[string]bool
}

func newFleetCreds(t testing.TB) *fleetCreds {
	t.Helper()
	s, err := broker.HashPassword("server-secret")
	if err != nil {
		t.Fatal(err)
	}
	d, err := broker.HashPassword("device-secret")
	if err != nil {
		t.Fatal(err)
	}
	return &fleetCreds{server: s, device: d, devices: map[string]bool{}}
}

func (c *fleetCreds) Lookup(name string) (broker.Identity, bool, error) {
	if name == "fleetvault" {
		return broker.Identity{Name: name, Role: broker.RoleServer, PasswordHash: c.server}, true, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.devices[name] {
		return broker.Identity{}, false, nil
	}
	return broker.Identity{Name: name, Role: broker.RoleDevice, PasswordHash: c.device}, true, nil
}

func (c *fleetCreds) password(device string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.devices[device] = true
	return "device-secret"
}

// TestConformanceEmbeddedBroker runs the suite through Fleetvault's own
// broker, with device authentication and the topic ACL in force.
func TestConformanceEmbeddedBroker(t *testing.T) {
	creds := newFleetCreds(t)
	agenttest.Run(t, func(t *testing.T) agenttest.Env {
		b := brokertest.Start(t, creds)
		return newEnv(t, brokertest.URL(b), "fleetvault", "server-secret", creds.password)
	})
}

func TestServeRefusedCredentials(t *testing.T) {
	creds := newFleetCreds(t)
	creds.password("d1")
	url := brokertest.URL(brokertest.Start(t, creds))
	for _, tc := range []struct{ name, id, password string }{
		{"wrong password", "d1", "guess"},
		{"unknown device", "d2", "device-secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := agent.NewHandler(tc.id, agenttest.NewMemDevice(nil, nil), agent.HandlerOptions{})
			err := Serve(t.Context(), h, DeviceOptions{BrokerURL: url, Password: tc.password})
			if err == nil || !refused(err) {
				t.Fatalf("Serve: %v, want a refusal", err)
			}
		})
	}
	if _, err := NewTransport(t.Context(), TransportOptions{BrokerURL: url, Username: "fleetvault", Password: "nope"}); err == nil {
		t.Error("NewTransport with a wrong password succeeded")
	}
}

// TestConformanceMosquitto runs the suite through a real Mosquitto configured
// with the shipped examples/mosquitto files (password file and ACL). One
// broker serves every case: each case uses its own device ids. The
// Concurrent case (200 calls at once) passes at QoS 1 only because the
// transport keeps at most DefaultMaxInFlight calls outstanding: Mosquitto
// queues 120 messages per client and drops the rest.
func TestConformanceMosquitto(t *testing.T) {
	users := map[string]string{"fleetvault": "server-secret"}
	for _, id := range agenttest.DeviceIDs() {
		users[id] = "device-secret"
	}
	url := brokertest.StartMosquitto(t, users, []string{"fleetvault"})
	agenttest.Run(t, func(t *testing.T) agenttest.Env {
		return newEnv(t, url, "fleetvault", "server-secret", func(string) string { return "device-secret" })
	})
}
