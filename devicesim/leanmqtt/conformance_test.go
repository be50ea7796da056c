package leanmqtt_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/agent/agenttest"
	"github.com/fleetvault/fleetvault/agent/mqtt"
	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/broker/brokertest"
	"github.com/fleetvault/fleetvault/devicesim/leanmqtt"
	"github.com/fleetvault/fleetvault/identifiers"
)

// TestConformance runs the agent protocol's conformance suite with devices
// on the lean client, as the simulator serves them, and agent/mqtt's
// transport on the server side.
func TestConformance(t *testing.T) {
	agenttest.Run(t, newEnv)
}

type env struct {
	url   string
	creds *lockedCreds
	tr    agent.Transport
}

// lockedCreds lets devices be added while the broker looks identities up.
type lockedCreds struct {
	mu sync.Mutex
	m  broker.StaticCredentials
}

var _ broker.Credentials = (*lockedCreds)(nil)

func (c *lockedCreds) Lookup(name string) (broker.Identity, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m.Lookup(name)
}

func newEnv(t *testing.T) agenttest.Env {
	creds := &lockedCreds{m: brokertest.Credentials(t, nil, map[string]string{"server": "server-pw"})}
	b := brokertest.Start(t, creds)
	e := &env{url: brokertest.URL(b), creds: creds}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr, err := mqtt.NewTransport(ctx, mqtt.TransportOptions{BrokerURL: e.url, Username: "server", Password: "server-pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	e.tr = tr
	return e
}

func (e *env) Transport() agent.Transport { return e.tr }

func (e *env) AddDevice(t *testing.T, id string, dev agent.Device) identifiers.ID {
	h, err := broker.HashPassword("pw-" + id)
	if err != nil {
		t.Fatal(err)
	}
	e.creds.mu.Lock()
	e.creds.m[id] = broker.Identity{Name: id, Role: broker.RoleDevice, PasswordHash: h}
	e.creds.mu.Unlock()
	handler := agent.NewHandler(id, dev, agent.HandlerOptions{})
	c, err := leanmqtt.Dial(context.Background(), leanmqtt.Options{
		Addr: strings.TrimPrefix(e.url, "mqtt://"), ClientID: id, Username: id, Password: "pw-" + id,
		Subscribe: []string{agent.RequestTopic(id)},
		OnMessage: func(c *leanmqtt.Conn, _ string, payload []byte) {
			go func() { // a case may hold the device while others call it
				if resp, ok := handler.HandleBytes(context.Background(), payload); ok {
					_ = c.Publish(agent.ResponseTopic(id), resp, 1)
				}
			}()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return identifiers.ID{Scheme: "mqtt", Address: id}
}

func (e *env) Unreachable(*testing.T) identifiers.ID {
	return identifiers.ID{Scheme: "mqtt", Address: "nobody-home"}
}
