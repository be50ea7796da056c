package coap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/identifiers"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// fakeDevice is an in-memory agent.Device.
type fakeDevice struct {
	mu       sync.Mutex
	tag      tagmatch.Tag
	settings agent.Settings
	reject   bool
}

func newFakeDevice(zone string) *fakeDevice {
	return &fakeDevice{
		tag: tagmatch.Tag{
			{Key: tagmatch.KeyManufacturer, Value: "Acme Corp."},
			{Key: tagmatch.KeyModel, Value: "xyz"},
			{Key: tagmatch.KeyZone, Value: zone},
		},
		settings: agent.Settings{"setpoint": uint64(21)},
	}
}

func (d *fakeDevice) setReject(v bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reject = v
}

func (d *fakeDevice) Tag(context.Context) (tagmatch.Tag, error) { return d.tag, nil }

func (d *fakeDevice) Settings(context.Context) (agent.Settings, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.settings, nil
}

func (d *fakeDevice) Apply(_ context.Context, s agent.Settings) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.reject {
		return fmt.Errorf("setpoint out of range: %w", agent.ErrRejected)
	}
	d.settings = s
	return nil
}

// testDevice is a device endpoint on a free loopback port.
type testDevice struct {
	dev  *fakeDevice
	srv  *Server
	port int
	host string
}

// startDevice serves a fake device on host (an IP address) and a free port.
func startDevice(t testing.TB, host string, g *Group) *testDevice {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(host)})
	if err != nil {
		t.Skipf("cannot bind %s: %v", host, err)
	}
	port := conn.LocalAddr().(*net.UDPAddr).Port
	dev := newFakeDevice("South")
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	h := agent.NewHandler("dev-"+strconv.Itoa(port), dev, agent.HandlerOptions{Addresses: []string{addr}})
	srv := NewServer(conn, h, ServerOptions{Group: g})
	serveTest(t, srv)
	return &testDevice{dev: dev, srv: srv, port: port, host: host}
}

func (d *testDevice) ident(location string) identifiers.ID {
	return identifiers.Settings("coap", d.host, d.port, location)
}

func newTestTransport(t testing.TB, opts TransportOptions) *Transport {
	t.Helper()
	tr, err := NewTransport(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// writeRequest is a WRITE of settings under job.
func writeRequest(t testing.TB, job string, s agent.Settings) *agent.Request {
	t.Helper()
	b, err := agent.EncodeSettings(s)
	if err != nil {
		t.Fatal(err)
	}
	return &agent.Request{Job: job, Settings: b, Hash: agent.Hash(b)}
}

func errCode(r *agent.Response) string {
	if r.Err == nil {
		return ""
	}
	return r.Err.Code
}

var errNoAnswer = errors.New("no answer")

// serveTest serves srv until the test ends, and fails the test if Serve
// ends with an error.
func serveTest(t testing.TB, srv *Server) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background()) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; err != nil {
			t.Errorf("device %s: serve: %v", srv.Handler().ID(), err)
		}
	})
}
