package broker_test

import (
	"crypto/tls"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/broker/brokertest"
)

const waitFor = 10 * time.Second

// fleet is a broker with two devices and a server identity.
func fleet(t *testing.T) (*broker.Broker, broker.StaticCredentials) {
	t.Helper()
	creds := brokertest.Credentials(t,
		map[string]string{"home1-thermo": "pw-thermo", "home2-lock": "pw-lock"},
		map[string]string{"fleetvault": "pw-server"})
	return brokertest.Start(t, creds), creds
}

// connect connects a paho client and returns it, or the connection error.
func connect(t *testing.T, url, clientID, user, pw string, opt ...func(*paho.ClientOptions)) (paho.Client, error) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(clientID).SetUsername(user).SetPassword(pw).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(waitFor).SetProtocolVersion(4)
	for _, f := range opt {
		f(o)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(waitFor) {
		return nil, errors.New("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c, nil
}

func mustConnect(t *testing.T, url, clientID, user, pw string, opt ...func(*paho.ClientOptions)) paho.Client {
	t.Helper()
	c, err := connect(t, url, clientID, user, pw, opt...)
	if err != nil {
		t.Fatalf("connect %s as %s: %v", clientID, user, err)
	}
	return c
}

// inbox collects messages a client receives.
type inbox struct {
	mu   sync.Mutex
	msgs []string // topic + " " + payload
	ch   chan struct{}
}

func newInbox() *inbox { return &inbox{ch: make(chan struct{}, 1000)} }

func (b *inbox) handler(_ paho.Client, m paho.Message) {
	b.mu.Lock()
	b.msgs = append(b.msgs, m.Topic()+" "+string(m.Payload()))
	b.mu.Unlock()
	b.ch <- struct{}{}
}

func (b *inbox) wait(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		b.mu.Lock()
		for _, m := range b.msgs {
			if m == want {
				b.mu.Unlock()
				return
			}
		}
		got := append([]string(nil), b.msgs...)
		b.mu.Unlock()
		select {
		case <-b.ch:
		case <-deadline:
			t.Fatalf("message %q never arrived; got %q", want, got)
		}
	}
}

func (b *inbox) has(want string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.msgs {
		if m == want {
			return true
		}
	}
	return false
}

func subscribe(t *testing.T, c paho.Client, filter string, in *inbox) byte {
	t.Helper()
	tok := c.Subscribe(filter, 1, in.handler)
	if !tok.WaitTimeout(waitFor) {
		t.Fatalf("subscribe %s timed out", filter)
	}
	if err := tok.Error(); err != nil {
		return 0x80
	}
	return tok.(*paho.SubscribeToken).Result()[filter]
}

func publish(t *testing.T, c paho.Client, topic string, qos byte, payload string) error {
	t.Helper()
	tok := c.Publish(topic, qos, false, payload)
	if !tok.WaitTimeout(waitFor) {
		return errors.New("publish timed out")
	}
	return tok.Error()
}

// poll waits until cond holds.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAuthentication(t *testing.T) {
	b, _ := fleet(t)
	url := brokertest.URL(b)
	for _, tc := range []struct {
		name, clientID, user, pw string
		ok                       bool
		stat                     func(broker.Stats) int64
	}{
		{"device", "home1-thermo", "home1-thermo", "pw-thermo", true, nil},
		{"server", "fleetvault", "fleetvault", "pw-server", true, nil},
		{"server with suffix", "fleetvault:worker-2", "fleetvault", "pw-server", true, nil},
		{"wrong password", "home1-thermo", "home1-thermo", "pw-lock", false, func(s broker.Stats) int64 { return s.AuthPassword }},
		{"empty password", "home1-thermo", "home1-thermo", "", false, func(s broker.Stats) int64 { return s.AuthPassword }},
		{"unknown device", "home9", "home9", "pw-thermo", false, func(s broker.Stats) int64 { return s.AuthUnknown }},
		{"invalid username", "a/b", "a/b", "x", false, func(s broker.Stats) int64 { return s.AuthUnknown }},
		{"device with another client id", "home2-lock", "home1-thermo", "pw-thermo", false, func(s broker.Stats) int64 { return s.AuthClientID }},
		{"server taking a device's client id", "home1-thermo", "fleetvault", "pw-server", false, func(s broker.Stats) int64 { return s.AuthClientID }},
		{"anonymous", "home1-thermo", "", "", false, func(s broker.Stats) int64 { return s.AuthAnonymous }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := b.Stats()
			c, err := connect(t, url, tc.clientID, tc.user, tc.pw)
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				c.Disconnect(0)
				return
			}
			if err == nil {
				t.Fatal("connected; want refused")
			}
			if !strings.Contains(err.Error(), "not Authorized") {
				t.Errorf("error %q; want CONNACK not authorized", err)
			}
			after := b.Stats()
			if tc.stat(after) != tc.stat(before)+1 || after.AuthFailures != before.AuthFailures+1 {
				t.Errorf("stats before %+v after %+v: want the reason counted once", before, after)
			}
		})
	}
}

func TestAnonymousAllowed(t *testing.T) {
	b := brokertest.StartOptions(t, broker.Options{AllowAnonymous: true})
	c := mustConnect(t, brokertest.URL(b), "dev1", "", "")
	in := newInbox()
	if code := subscribe(t, c, broker.RequestTopic("dev1"), in); code != 1 {
		t.Errorf("own request topic: SUBACK %#x, want granted QoS 1", code)
	}
	if code := subscribe(t, c, broker.RequestTopic("dev2"), in); code != 0x80 {
		t.Errorf("another device's topic: SUBACK %#x, want failure 0x80", code)
	}
	if _, err := connect(t, brokertest.URL(b), "dev1", "dev1", "guess"); err == nil {
		t.Error("unknown credentials accepted: presented credentials must still be checked")
	}
}

func TestRequestResponse(t *testing.T) {
	b, _ := fleet(t)
	url := brokertest.URL(b)
	srv := mustConnect(t, url, "fleetvault", "fleetvault", "pw-server")
	dev := mustConnect(t, url, "home1-thermo", "home1-thermo", "pw-thermo")
	devIn, srvIn := newInbox(), newInbox()
	if code := subscribe(t, dev, broker.RequestTopic("home1-thermo"), devIn); code != 1 {
		t.Fatalf("device subscribe own req: SUBACK %#x", code)
	}
	if code := subscribe(t, srv, broker.ResponseFilter, srvIn); code != 1 {
		t.Fatalf("server subscribe %s: SUBACK %#x", broker.ResponseFilter, code)
	}
	if err := publish(t, srv, broker.RequestTopic("home1-thermo"), 1, "read tag"); err != nil {
		t.Fatal(err)
	}
	devIn.wait(t, "fleetvault/v1/home1-thermo/req read tag")
	if err := publish(t, dev, broker.ResponseTopic("home1-thermo"), 1, "tag"); err != nil {
		t.Fatal(err)
	}
	srvIn.wait(t, "fleetvault/v1/home1-thermo/res tag")
	if s := b.Stats(); s.ACLDenials != 0 {
		t.Errorf("ACL denials %d in a legitimate exchange", s.ACLDenials)
	}
}

func TestACL(t *testing.T) {
	b, _ := fleet(t)
	url := brokertest.URL(b)
	srv := mustConnect(t, url, "fleetvault", "fleetvault", "pw-server")
	srvIn := newInbox()
	subscribe(t, srv, broker.ResponseFilter, srvIn)

	t.Run("subscribe", func(t *testing.T) {
		dev := mustConnect(t, url, "home1-thermo", "home1-thermo", "pw-thermo")
		for _, tc := range []struct {
			name, filter string
			granted      bool
		}{
			{"own request topic", "fleetvault/v1/home1-thermo/req", true},
			{"another device's request topic", "fleetvault/v1/home2-lock/req", false},
			{"own response topic", "fleetvault/v1/home1-thermo/res", false},
			{"all requests", "fleetvault/v1/+/req", false},
			{"everything", "#", false},
			{"sys", "$SYS/#", false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := b.Stats().ACLSubscribeDenials
				code := subscribe(t, dev, tc.filter, newInbox())
				if tc.granted != (code < 0x80) {
					t.Errorf("SUBACK %#x, want granted=%v", code, tc.granted)
				}
				if got := b.Stats().ACLSubscribeDenials - before; !tc.granted && got != 1 {
					t.Errorf("denials counted %d, want 1", got)
				}
			})
		}
	})

	t.Run("publish to another device's response topic at QoS 0 is dropped", func(t *testing.T) {
		dev := mustConnect(t, url, "home1-thermo", "home1-thermo", "pw-thermo")
		before := b.Stats().ACLPublishDenials
		if err := publish(t, dev, broker.ResponseTopic("home2-lock"), 0, "forged"); err != nil {
			t.Fatal(err)
		}
		poll(t, "the denial to be counted", func() bool { return b.Stats().ACLPublishDenials == before+1 })
		// A legitimate message after the forged one arrives; the forged one must not.
		if err := publish(t, dev, broker.ResponseTopic("home1-thermo"), 1, "real"); err != nil {
			t.Fatal(err)
		}
		srvIn.wait(t, "fleetvault/v1/home1-thermo/res real")
		if srvIn.has("fleetvault/v1/home2-lock/res forged") {
			t.Error("the server received a forged response")
		}
	})

	t.Run("publish a request as a device at QoS 1 is acknowledged and dropped", func(t *testing.T) {
		var lost atomic.Bool
		dev := mustConnect(t, url, "home1-thermo", "home1-thermo", "pw-thermo", func(o *paho.ClientOptions) {
			o.SetConnectionLostHandler(func(paho.Client, error) { lost.Store(true) })
		})
		other := mustConnect(t, url, "home2-lock", "home2-lock", "pw-lock")
		otherIn := newInbox()
		subscribe(t, other, broker.RequestTopic("home2-lock"), otherIn)
		before := b.Stats().ACLPublishDenials
		if err := publish(t, dev, broker.RequestTopic("home2-lock"), 1, "forged request"); err != nil {
			t.Fatalf("refused QoS 1 publish: %v; want a PUBACK (MQTT 3.1.1 has no refusal code)", err)
		}
		if got := b.Stats().ACLPublishDenials - before; got != 1 {
			t.Errorf("denials counted %d, want 1", got)
		}
		if err := publish(t, srv, broker.RequestTopic("home2-lock"), 1, "real request"); err != nil {
			t.Fatal(err)
		}
		otherIn.wait(t, "fleetvault/v1/home2-lock/req real request")
		if otherIn.has("fleetvault/v1/home2-lock/req forged request") {
			t.Error("a device's forged request was delivered")
		}
		if err := publish(t, dev, broker.ResponseTopic("home1-thermo"), 1, "still here"); err != nil || lost.Load() {
			t.Errorf("the device lost its connection (lost=%v, publish: %v)", lost.Load(), err)
		}
	})

	t.Run("server", func(t *testing.T) {
		for _, tc := range []struct {
			name, filter string
			granted      bool
		}{
			{"all responses", "fleetvault/v1/+/res", true},
			{"shared responses", "$share/servers/fleetvault/v1/+/res", true},
			{"one device's responses", "fleetvault/v1/home1-thermo/res", true},
			{"requests", "fleetvault/v1/+/req", false},
			{"everything", "#", false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if code := subscribe(t, srv, tc.filter, newInbox()); tc.granted != (code < 0x80) {
					t.Errorf("SUBACK %#x, want granted=%v", code, tc.granted)
				}
			})
		}
	})
}

func TestPresence(t *testing.T) {
	b, _ := fleet(t)
	var mu sync.Mutex
	var events []string
	b.OnConnect(func(id string) { mu.Lock(); events = append(events, "up "+id); mu.Unlock() })
	b.OnDisconnect(func(id string) { mu.Lock(); events = append(events, "down "+id); mu.Unlock() })
	url := brokertest.URL(b)
	mustConnect(t, url, "fleetvault", "fleetvault", "pw-server") // servers are not reported
	dev := mustConnect(t, url, "home1-thermo", "home1-thermo", "pw-thermo")
	poll(t, "device online", func() bool { return b.Connected("home1-thermo") })
	// CONNACK is sent just before the session-established hook runs, so poll.
	poll(t, "two clients counted", func() bool { return b.Stats().Connected == 2 })
	dev.Disconnect(100)
	poll(t, "device offline", func() bool { return !b.Connected("home1-thermo") })
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(events, ","); got != "up home1-thermo,down home1-thermo" {
		t.Errorf("events %q", got)
	}
}

func TestTakeoverKeepsDeviceOnline(t *testing.T) {
	b, _ := fleet(t)
	var mu sync.Mutex
	var events []string
	record := func(e string) func(string) {
		return func(string) { mu.Lock(); events = append(events, e); mu.Unlock() }
	}
	b.OnConnect(record("up"))
	b.OnDisconnect(record("down"))
	url := brokertest.URL(b)
	lost := make(chan struct{})
	mustConnect(t, url, "home1-thermo", "home1-thermo", "pw-thermo", func(o *paho.ClientOptions) {
		o.SetConnectionLostHandler(func(paho.Client, error) { close(lost) })
	})
	second := mustConnect(t, url, "home1-thermo", "home1-thermo", "pw-thermo")
	select {
	case <-lost:
	case <-time.After(waitFor):
		t.Fatal("the first connection was not taken over")
	}
	poll(t, "two connects reported", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Count(strings.Join(events, ","), "up") == 2
	})
	if err := publish(t, second, broker.ResponseTopic("home1-thermo"), 1, "still here"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := append([]string(nil), events...)
	mu.Unlock()
	if got[len(got)-1] != "up" || !b.Connected("home1-thermo") || b.Stats().Connected != 1 {
		t.Errorf("events %v, connected %v, count %d: the newer connection must stay online", got, b.Connected("home1-thermo"), b.Stats().Connected)
	}
}

func TestCredentialsCache(t *testing.T) {
	creds := brokertest.Credentials(t, map[string]string{"dev1": "secret-1"}, nil)
	b := brokertest.Start(t, creds)
	url := brokertest.URL(b)
	for i := 0; i < 3; i++ {
		mustConnect(t, url, "dev1", "dev1", "secret-1").Disconnect(0)
	}
	if hits := b.Stats().AuthCacheHits; hits != 2 {
		t.Errorf("cache hits %d after three connections, want 2", hits)
	}
	// A changed stored hash (a rotated secret) must take effect at once.
	h, err := broker.HashPassword("secret-2")
	if err != nil {
		t.Fatal(err)
	}
	creds["dev1"] = broker.Identity{Name: "dev1", Role: broker.RoleDevice, PasswordHash: h}
	if _, err := connect(t, url, "dev1", "dev1", "secret-1"); err == nil {
		t.Error("old secret accepted from the cache after the hash changed")
	}
	mustConnect(t, url, "dev1", "dev1", "secret-2")
}

func TestInlinePublishSubscribe(t *testing.T) {
	b, _ := fleet(t)
	url := brokertest.URL(b)
	got := make(chan string, 10)
	cancel, err := b.Subscribe(broker.ResponseFilter, func(topic string, payload []byte) {
		got <- topic + " " + string(payload)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	dev := mustConnect(t, url, "home1-thermo", "home1-thermo", "pw-thermo")
	devIn := newInbox()
	subscribe(t, dev, broker.RequestTopic("home1-thermo"), devIn)
	if err := b.Publish(broker.RequestTopic("home1-thermo"), []byte("inline request"), 1); err != nil {
		t.Fatal(err)
	}
	devIn.wait(t, "fleetvault/v1/home1-thermo/req inline request")
	if err := publish(t, dev, broker.ResponseTopic("home1-thermo"), 1, "answer"); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != "fleetvault/v1/home1-thermo/res answer" {
			t.Errorf("inline subscriber got %q", m)
		}
	case <-time.After(waitFor):
		t.Fatal("inline subscriber got nothing")
	}
}

func TestTLSSelfSigned(t *testing.T) {
	creds := brokertest.Credentials(t, map[string]string{"dev1": "pw"}, nil)
	b := brokertest.StartOptions(t, broker.Options{Credentials: creds, TLSAddr: "127.0.0.1:0", SelfSigned: true})
	url := "ssl://" + b.TLSAddr().String()
	t.Run("trusted", func(t *testing.T) {
		mustConnect(t, url, "dev1", "dev1", "pw", func(o *paho.ClientOptions) {
			o.SetTLSConfig(&tls.Config{RootCAs: b.CertPool(), ServerName: "localhost"})
		})
	})
	t.Run("untrusted", func(t *testing.T) {
		if _, err := connect(t, url, "dev1", "dev1", "pw"); err == nil {
			t.Error("connected without trusting the self-signed certificate")
		}
	})
}

func TestWebSocket(t *testing.T) {
	creds := brokertest.Credentials(t, map[string]string{"dev1": "pw"}, map[string]string{"srv": "spw"})
	b := brokertest.StartOptions(t, broker.Options{Credentials: creds, WSAddr: "127.0.0.1:0"})
	ws := "ws://" + b.WSAddr().String() + "/mqtt"
	dev := mustConnect(t, ws, "dev1", "dev1", "pw")
	in := newInbox()
	subscribe(t, dev, broker.RequestTopic("dev1"), in)
	srv := mustConnect(t, brokertest.URL(b), "srv", "srv", "spw")
	if err := publish(t, srv, broker.RequestTopic("dev1"), 1, "over websocket"); err != nil {
		t.Fatal(err)
	}
	in.wait(t, "fleetvault/v1/dev1/req over websocket")
	if _, err := connect(t, ws, "dev1", "dev1", "wrong"); err == nil {
		t.Error("wrong password accepted over WebSocket")
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts broker.Options
		want string
	}{
		{"no listener", broker.Options{Credentials: broker.StaticCredentials{}}, "no listener"},
		{"no credentials", broker.Options{TCPAddr: "127.0.0.1:0"}, "no Credentials"},
		{"tls without certificate", broker.Options{TLSAddr: "127.0.0.1:0", AllowAnonymous: true}, "CertFile and KeyFile"},
		{"missing certificate file", broker.Options{TLSAddr: "127.0.0.1:0", AllowAnonymous: true, CertFile: "testdata/none.pem", KeyFile: "testdata/none.key"}, "testdata/none.pem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := broker.New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestStartBusyAddress(t *testing.T) {
	b := brokertest.StartOptions(t, broker.Options{AllowAnonymous: true})
	b2, err := broker.New(broker.Options{TCPAddr: b.Addr().String(), AllowAnonymous: true})
	if err != nil {
		t.Fatal(err)
	}
	err = b2.Start(t.Context())
	if err == nil || !strings.Contains(err.Error(), b.Addr().String()) {
		t.Errorf("error %v, want one naming the address", err)
	}
	if err := b2.Close(); err != nil {
		t.Error(err)
	}
}
