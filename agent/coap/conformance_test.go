package coap

import (
	"context"
	"net"
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
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background()) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; err != nil {
			t.Errorf("device %s: serve: %v", id, err)
		}
	})
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
