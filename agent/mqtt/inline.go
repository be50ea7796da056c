package mqtt

import (
	"fmt"
	"log/slog"

	"github.com/fleetvault/fleetvault/agent"
)

// Inline is an MQTT broker embedded in the same process that publishes and
// subscribes without a network connection (package broker's Broker does).
type Inline interface {
	// Publish sends payload to topic as the broker's own trusted client.
	Publish(topic string, payload []byte, qos byte) error
	// Subscribe calls fn for every message on a topic matching filter, until
	// cancel; fn must not block.
	Subscribe(filter string, fn func(topic string, payload []byte)) (cancel func(), err error)
}

// NewInlineTransport is the server side over an embedded broker, in process:
// requests are injected into the broker and answers arrive by an inline
// subscription, with no TCP connection and no per-client queue that could
// overflow when thousands of devices answer at once. It behaves exactly as
// NewTransport's Transport otherwise.
func NewInlineTransport(b Inline, qos byte, log *slog.Logger) (*Transport, error) {
	qos, err := pickQoS(qos, false)
	if err != nil {
		return nil, err
	}
	t, err := newTransport(qos, log)
	if err != nil {
		return nil, err
	}
	t.inline = b
	t.unsub, err = b.Subscribe(agent.ResponseWildcard, t.deliver)
	if err != nil {
		return nil, fmt.Errorf("mqtt: subscribe to %s in process: %w", agent.ResponseWildcard, err)
	}
	return t, nil
}
