package simbench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/devicesim"
	"github.com/fleetvault/fleetvault/devicesim/leanmqtt"
)

// Broker is an MQTT broker and the server identity to use on it.
type Broker struct {
	URL      string // mqtt://host:port
	Username string // an identity with the server role
	Password string
}

// echoShards spreads the pending echoes over several locks.
const echoShards = 64

type echoShard struct {
	mu      sync.Mutex
	pending map[uint64]chan struct{}
}

// Echoes correlates a ceiling's 8-byte requests with their echoes: each
// request carries a sequence number that the echoing device sends back.
// It is safe for concurrent use.
type Echoes struct {
	seq    atomic.Uint64
	shards [echoShards]echoShard
}

// NewEchoes returns an empty table.
func NewEchoes() *Echoes {
	e := &Echoes{}
	for i := range e.shards {
		e.shards[i].pending = map[uint64]chan struct{}{}
	}
	return e
}

// Deliver hands an echo to the round trip waiting for it. Anything else (a
// presence announcement, an agent answer from before echoing began, a late
// echo) is ignored. It never blocks.
func (e *Echoes) Deliver(p []byte) {
	if len(p) != 8 {
		return
	}
	n := binary.BigEndian.Uint64(p)
	sh := &e.shards[n%echoShards]
	sh.mu.Lock()
	ch := sh.pending[n]
	delete(sh.pending, n)
	sh.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

// RoundTrip sends one request with publish and waits for its echo or the end
// of ctx (then agent.ErrTimeout, wrapped).
func (e *Echoes) RoundTrip(ctx context.Context, publish func(payload []byte) error) error {
	n := e.seq.Add(1)
	ch := make(chan struct{})
	sh := &e.shards[n%echoShards]
	sh.mu.Lock()
	sh.pending[n] = ch
	sh.mu.Unlock()
	var p [8]byte
	binary.BigEndian.PutUint64(p[:], n)
	err := publish(p[:])
	if err == nil {
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			err = fmt.Errorf("no echo: %w", agent.ErrTimeout)
		}
	}
	sh.mu.Lock()
	delete(sh.pending, n)
	sh.mu.Unlock()
	return err
}

// MQTTCeiling measures the MQTT ceiling: one server-side connection (the
// simulator's lean client, so the figure is the broker's and the devices'
// limit, not a client library's) publishes 8-byte requests (QoS 1) to the
// fleet's healthy MQTT devices, which publish them back untouched
// (Fleet.SetEcho) through the same broker and device connections. At most
// concurrency requests are outstanding. It returns round trips per second.
func MQTTCeiling(ctx context.Context, b Broker, fleet *devicesim.Fleet, d time.Duration, concurrency int) (float64, error) {
	c, err := MQTTCeilingCount(ctx, b, fleet, d, concurrency)
	return c.PerSecond(), err
}

// MQTTCeilingCount is MQTTCeiling with the full count.
func MQTTCeilingCount(ctx context.Context, b Broker, fleet *devicesim.Fleet, d time.Duration, concurrency int) (Count, error) {
	targets := healthy(fleet, devicesim.TransportMQTT)
	topics := make([]string, len(targets))
	for i, t := range targets {
		topics[i] = agent.RequestTopic(t.Address)
	}
	echoes := NewEchoes()
	onMessage := func(_ *leanmqtt.Conn, _ string, p []byte) { echoes.Deliver(p) }
	addr := strings.TrimPrefix(strings.TrimPrefix(b.URL, "mqtt://"), "tcp://")
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	conn, err := leanmqtt.Dial(ctx, leanmqtt.Options{Addr: addr, ClientID: b.Username + ":ceiling-" + hex.EncodeToString(rnd[:]),
		Username: b.Username, Password: b.Password, Subscribe: []string{agent.ResponseWildcard}, OnMessage: onMessage,
		ReadBufferSize: 64 << 10})
	if err != nil {
		return Count{}, fmt.Errorf("simbench: ceiling client: %w", err)
	}
	defer conn.Close()

	fleet.SetEcho(true)
	defer fleet.SetEcho(false)
	return Drive(ctx, d, concurrency, len(targets), func(ctx context.Context, i int) error {
		err := echoes.RoundTrip(ctx, func(p []byte) error { return conn.Publish(topics[i], p, 1) })
		if err != nil {
			return fmt.Errorf("simbench: %s: %w", targets[i].Address, err)
		}
		return nil
	})
}

// pahoCeilingCount is the ceiling with a paho client on the server side,
// set up as agent/mqtt's transport sets up its own: it tells how much of the
// gap between the probes and MQTTCeiling is the client library's.
func pahoCeilingCount(ctx context.Context, b Broker, fleet *devicesim.Fleet, d time.Duration, concurrency int) (Count, error) {
	targets := healthy(fleet, devicesim.TransportMQTT)
	topics := make([]string, len(targets))
	for i, t := range targets {
		topics[i] = agent.RequestTopic(t.Address)
	}
	echoes := NewEchoes()
	onMessage := func(_ paho.Client, m paho.Message) { echoes.Deliver(m.Payload()) }
	client, err := connectPaho(ctx, b, "ceiling", onMessage)
	if err != nil {
		return Count{}, err
	}
	defer client.Disconnect(100)

	fleet.SetEcho(true)
	defer fleet.SetEcho(false)
	return Drive(ctx, d, concurrency, len(targets), func(ctx context.Context, i int) error {
		var tok paho.Token
		err := echoes.RoundTrip(ctx, func(p []byte) error {
			tok = client.Publish(topics[i], 1, false, p)
			return nil
		})
		if err != nil && tok.Error() != nil {
			err = tok.Error()
		}
		if err != nil {
			return fmt.Errorf("simbench: %s: %w", targets[i].Address, err)
		}
		return nil
	})
}

// connectPaho connects a server-side paho client subscribed to every
// device's response topic, with the options agent/mqtt's transport uses.
func connectPaho(ctx context.Context, b Broker, role string, fn paho.MessageHandler) (paho.Client, error) {
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	subscribed := make(chan error, 1)
	po := paho.NewClientOptions().AddBroker(b.URL).
		SetClientID(b.Username + ":" + role + "-" + hex.EncodeToString(rnd[:])).
		SetUsername(b.Username).SetPassword(b.Password).
		SetProtocolVersion(4).SetCleanSession(true).SetOrderMatters(false).
		SetAutoReconnect(false).SetConnectTimeout(10 * time.Second).SetKeepAlive(30 * time.Second)
	po.SetOnConnectHandler(func(c paho.Client) {
		tok := c.Subscribe(agent.ResponseWildcard, 1, fn)
		tok.Wait()
		subscribed <- tok.Error()
	})
	client := paho.NewClient(po)
	tok := client.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("simbench: connect to %s as %s: %w", b.URL, b.Username, err)
	}
	select {
	case err := <-subscribed:
		if err != nil {
			client.Disconnect(0)
			return nil, fmt.Errorf("simbench: subscribe to %s: %w", agent.ResponseWildcard, err)
		}
	case <-ctx.Done():
		client.Disconnect(0)
		return nil, ctx.Err()
	}
	return client, nil
}
