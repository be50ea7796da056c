package coap

import (
	"context"
	"net"
	"sync"
	"testing"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/agent/agenttest"
	"github.com/fleetvault/fleetvault/identifiers"
)

// coapEnv is the conformance suite's view of this package: a Transport and
// device endpoints on loopback ports, all in one Group.
type coapEnv struct {
	tr    *Transport
	group *Group
}

var _ agenttest.Env = (*coapEnv)(nil)

func newCoapEnv(t *testing.T) agenttest.Env {
	g := NewGroup()
	t.Cleanup(g.Close)
	return &coapEnv{tr: newTestTransport(t, TransportOptions{Insecure: true}), group: g}
}

func (e *coapEnv) Transport() agent.Transport { return e.tr }

func (e *coapEnv) AddDevice(t *testing.T, id string, dev agent.Device) identifiers.ID {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := conn.LocalAddr().(*net.UDPAddr)
	h := agent.NewHandler(id, dev, agent.HandlerOptions{Addresses: []string{addr.String()}})
	srv := NewServer(conn, h, ServerOptions{Group: e.group})
	serveTest(t, srv)
	return identifiers.ID{Scheme: "coap", Address: "127.0.0.1", Port: addr.Port}
}

func (e *coapEnv) Unreachable(t *testing.T) identifiers.ID {
	t.Helper()
	// A port that was free a moment ago: nobody answers there.
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := conn.LocalAddr().(*net.UDPAddr).Port
	_ = conn.Close()
	return identifiers.ID{Scheme: "coap", Address: "127.0.0.1", Port: port}
}

func TestConformance(t *testing.T) {
	agenttest.Run(t, newCoapEnv)
}

// secureEnv runs the suite over DTLS: every device has its own key, and the
// transport is told which device each identifier names (agent.WithDevice),
// as the group-restore engine does.
type secureEnv struct {
	tr    *Transport
	mu    sync.Mutex
	keys  map[string][]byte
	names map[int]string // device id by port
}

var _ agenttest.Env = (*secureEnv)(nil)

func newSecureEnv(t *testing.T) agenttest.Env {
	e := &secureEnv{keys: map[string][]byte{}, names: map[int]string{}}
	e.tr = newTestTransport(t, TransportOptions{Keys: func(_ context.Context, device string) ([]byte, error) {
		e.mu.Lock()
		defer e.mu.Unlock()
		if k, ok := e.keys[device]; ok {
			return k, nil
		}
		return nil, ErrNoKey
	}})
	return e
}

func (e *secureEnv) Transport() agent.Transport { return namedTransport{e} }

func (e *secureEnv) AddDevice(t *testing.T, id string, dev agent.Device) identifiers.ID {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := conn.LocalAddr().(*net.UDPAddr)
	key := []byte("conformance-key-" + id)
	h := agent.NewHandler(id, dev, agent.HandlerOptions{Addresses: []string{addr.String()}})
	srv, err := NewSecureServer(conn, h, key, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	e.keys[id], e.names[addr.Port] = key, id
	e.mu.Unlock()
	serveTest(t, srv)
	return identifiers.ID{Scheme: "coaps", Address: "127.0.0.1", Port: addr.Port}
}

func (e *secureEnv) Unreachable(t *testing.T) identifiers.ID {
	id := (&coapEnv{}).Unreachable(t)
	id.Scheme = "coaps"
	e.mu.Lock()
	e.names[id.Port], e.keys["nobody"] = "nobody", []byte("conformance-key-nobody")
	e.mu.Unlock()
	return id
}

// namedTransport names the device of each identifier in the context.
type namedTransport struct{ e *secureEnv }

func (n namedTransport) Do(ctx context.Context, target identifiers.ID, req *agent.Request) (*agent.Response, error) {
	n.e.mu.Lock()
	device := n.e.names[target.Port]
	n.e.mu.Unlock()
	return n.e.tr.Do(agent.WithDevice(ctx, device), target, req)
}

func (n namedTransport) Close() error { return n.e.tr.Close() }

func TestConformanceDTLS(t *testing.T) {
	agenttest.Run(t, newSecureEnv)
}
