package mqtt

import (
	"testing"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/agent/agenttest"
	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/broker/brokertest"
)

var _ Inline = (*broker.Broker)(nil)

// TestConformanceInline runs the suite with the server side in process, over
// the embedded broker's inline client, and devices over TCP with auth and ACL.
func TestConformanceInline(t *testing.T) {
	creds := newFleetCreds(t)
	agenttest.Run(t, func(t *testing.T) agenttest.Env {
		b := brokertest.Start(t, creds)
		tr, err := NewInlineTransport(b, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		e := &env{url: brokertest.URL(b), tr: tr, password: creds.password, waiting: map[string]chan struct{}{}}
		tr.OnOnline(e.online)
		return e
	})
}

var _ agent.PresenceNotifier = (*Transport)(nil)
