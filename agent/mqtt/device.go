package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetvault/fleetvault/agent"
)

// DeviceOptions configure the device side. BrokerURL is required; the client
// id and user name are the handler's device id.
type DeviceOptions struct {
	BrokerURL string      // mqtt://host:port, tcp://host:port or mqtts://host:port
	Password  string      // the device's password at the broker
	TLSConfig *tls.Config // for mqtts://; nil uses the system roots
	Logger    *slog.Logger
	// QoS of answers and of the request subscription: 1 (the default when
	// zero) or 2; AtMostOnce selects 0.
	QoS        byte
	AtMostOnce bool
	// ConnectTimeout bounds each connection attempt (default 10s).
	ConnectTimeout time.Duration
	// OnConnect, when set, is called after each (re)connection once the device
	// is subscribed and has announced itself. It must not block.
	OnConnect func()
}

// maxRetryWait caps the wait between first-connection attempts.
const maxRetryWait = 30 * time.Second

// Serve connects h's device to the broker and answers requests until ctx
// ends, then disconnects and returns nil. It keeps trying while the broker is
// unreachable and reconnects after a lost connection, announcing the device
// on every connect. It returns an error for invalid options, or when the
// broker refuses the device's credentials or its subscription: retrying
// cannot help then.
func Serve(ctx context.Context, h *agent.Handler, opts DeviceOptions) error {
	id := h.ID()
	if err := agent.CheckDeviceID(id); err != nil {
		return fmt.Errorf("mqtt: serve: %w", err)
	}
	if err := checkBrokerURL(opts.BrokerURL); err != nil {
		return err
	}
	qos, err := pickQoS(opts.QoS, opts.AtMostOnce)
	if err != nil {
		return err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("device", id, "broker", opts.BrokerURL)
	reqTopic, resTopic, hello := agent.RequestTopic(id), agent.ResponseTopic(id), h.Hello()

	// Each message arrives on its own goroutine (OrderMatters is off), so a
	// slow device blocks neither paho nor other requests.
	onRequest := func(c paho.Client, m paho.Message) {
		out, ok := h.HandleBytes(ctx, m.Payload())
		if ok {
			c.Publish(resTopic, qos, false, out)
		}
	}
	fatal := make(chan error, 1)
	po := clientOptions(opts.BrokerURL, id, id, opts.Password, opts.TLSConfig, opts.ConnectTimeout)
	po.SetOnConnectHandler(func(c paho.Client) {
		err := subscribe(c, reqTopic, qos, onRequest)
		if err != nil && !errors.Is(err, errSubscriptionRefused) {
			log.Warn("mqtt: device cannot subscribe to its requests; will retry on reconnect", "topic", reqTopic, "err", err)
			return
		}
		if err != nil {
			select {
			case fatal <- fmt.Errorf("mqtt: device %s: subscribe to %s: %w", id, reqTopic, err):
			default:
			}
			return
		}
		if tok := c.Publish(resTopic, qos, false, hello); tok.Wait() && tok.Error() != nil {
			log.Warn("mqtt: presence announcement failed", "err", tok.Error())
		}
		log.Debug("mqtt: device online")
		if opts.OnConnect != nil {
			opts.OnConnect()
		}
	})
	po.SetConnectionLostHandler(func(_ paho.Client, err error) {
		log.Warn("mqtt: device lost its broker connection; reconnecting", "err", err)
	})
	client := paho.NewClient(po)
	if err := firstConnect(ctx, client, opts.BrokerURL, log); err != nil {
		return err
	}
	defer client.Disconnect(250)
	select {
	case <-ctx.Done():
		return nil
	case err := <-fatal:
		return err
	}
}

// firstConnect retries with backoff until connected, ctx ends (nil: nothing
// went wrong, the caller stopped), or the broker refuses the device.
func firstConnect(ctx context.Context, c paho.Client, broker string, log *slog.Logger) error {
	wait := 100 * time.Millisecond
	for {
		err := connect(ctx, c, broker)
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return nil
		case refused(err):
			return fmt.Errorf("%w (check the device id and password)", err)
		}
		log.Warn("mqtt: device cannot reach the broker; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(wait*2, maxRetryWait)
	}
}
