package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

const defaultConnectTimeout = 10 * time.Second

// checkBrokerURL accepts mqtt://, tcp:// and mqtts:// URLs with a host and port.
func checkBrokerURL(s string) error {
	if s == "" {
		return errors.New("mqtt: no broker URL: expected mqtt://host:port, tcp://host:port or mqtts://host:port")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("mqtt: broker URL %q: %w", s, err)
	}
	switch u.Scheme {
	case "mqtt", "tcp", "mqtts":
	default:
		return fmt.Errorf("mqtt: broker URL %q: scheme %q: expected mqtt, tcp or mqtts", s, u.Scheme)
	}
	if u.Hostname() == "" || u.Port() == "" {
		return fmt.Errorf("mqtt: broker URL %q: expected host:port, e.g. mqtt://127.0.0.1:1883", s)
	}
	return nil
}

func pickQoS(qos byte, atMostOnce bool) (byte, error) {
	switch {
	case atMostOnce:
		return 0, nil
	case qos == 0:
		return 1, nil
	case qos <= 2:
		return qos, nil
	}
	return 0, fmt.Errorf("mqtt: QoS %d: expected 1 or 2 (or AtMostOnce for 0)", qos)
}

func clientOptions(broker, clientID, user, password string, tlsConf *tls.Config, timeout time.Duration) *paho.ClientOptions {
	if timeout <= 0 {
		timeout = defaultConnectTimeout
	}
	po := paho.NewClientOptions().
		AddBroker(broker).
		SetClientID(clientID).
		SetUsername(user).
		SetPassword(password).
		SetProtocolVersion(4).  // MQTT 3.1.1
		SetCleanSession(true).  // subscriptions are renewed on every connect
		SetOrderMatters(false). // each message on its own goroutine: never block paho's reader
		SetAutoReconnect(true).
		SetConnectRetry(false). // the first connect is ours to retry (see connect)
		SetConnectTimeout(timeout).
		SetWriteTimeout(timeout).
		SetKeepAlive(30 * time.Second).
		SetMaxReconnectInterval(30 * time.Second)
	if tlsConf != nil {
		po.SetTLSConfig(tlsConf)
	}
	return po
}

// connect makes the first connection, waiting at most until ctx ends.
func connect(ctx context.Context, c paho.Client, broker string) error {
	tok := c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		c.Disconnect(0)
		return fmt.Errorf("mqtt: connect to %s: %w", broker, ctx.Err())
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("mqtt: connect to %s: %w", broker, err)
	}
	return nil
}

// refused reports whether the broker refused a connection for good: retrying
// with the same credentials and client id cannot help.
func refused(err error) bool {
	return errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) ||
		errors.Is(err, packets.ErrorRefusedNotAuthorised) ||
		errors.Is(err, packets.ErrorRefusedIDRejected) ||
		errors.Is(err, packets.ErrorRefusedBadProtocolVersion)
}
