package mqtt

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/identifiers"
)

// TransportOptions configure the server side. BrokerURL is required.
type TransportOptions struct {
	BrokerURL string      // mqtt://host:port, tcp://host:port or mqtts://host:port
	ClientID  string      // default: Username (or "fleetvault-server") + ":" + a random suffix
	Username  string      // the server's identity at the broker (role server)
	Password  string      //
	TLSConfig *tls.Config // for mqtts://; nil uses the system roots
	Logger    *slog.Logger
	// QoS of requests and of the response subscription: 1 (the default when
	// zero) or 2. AtMostOnce selects QoS 0 instead: faster, but a message the
	// broker drops becomes a timeout.
	QoS        byte
	AtMostOnce bool
	// ConnectTimeout bounds each connection attempt (default 10s).
	ConnectTimeout time.Duration
	// MaxInFlight caps the calls waiting for an answer at once; further calls
	// wait for a slot (within their context). A broker queues a bounded number
	// of messages per client (Mosquitto's max_inflight_messages plus
	// max_queued_messages, the embedded broker's pending-write limit) and
	// silently drops what does not fit: all answers go to the server's one
	// client, so more outstanding calls than that queue holds lose answers
	// under a burst. 0 means DefaultMaxInFlight; negative means no cap.
	MaxInFlight int
	// Background makes NewTransport return at once and connect (and
	// subscribe) in the background, retrying until the broker answers: a
	// broker shard that is down must not stop the server. Until the
	// subscription is in place, calls fail at once with agent.ErrUnreachable.
	Background bool
}

// DefaultMaxInFlight fits the shipped Mosquitto configuration (20 in flight
// plus 100 queued) and the embedded broker's per-client queue.
const DefaultMaxInFlight = 100

// Reasons a received message is dropped, as counted in Stats.Dropped.
const (
	DropTopic       = "bad-topic"       // not fleetvault/v1/<device id>/res
	DropMalformed   = "malformed"       // does not decode within the limits
	DropDevice      = "device-mismatch" // its device field is not the device of its topic
	DropUnknownID   = "unknown-id"      // no call waits for its correlation id (late, repeated or forged)
	DropWrongDevice = "wrong-device"    // a waiting call's id, but answered by a device it was not sent to
)

// Stats counts what a Transport sent and received.
type Stats struct {
	Sent     uint64            // requests published
	Received uint64            // messages received on response topics
	Answered uint64            // answers delivered to a waiting call
	Presence uint64            // presence announcements
	Dropped  map[string]uint64 // messages dropped, by reason (Drop...)
}

const shardCount = 64 // spreads the pending-call map's lock

// Transport is the server side of the protocol over MQTT. It implements
// agent.Transport and agent.PresenceNotifier.
type Transport struct {
	client paho.Client // nil for an inline transport
	inline Inline      // nil for a paho transport
	unsub  func()      // ends the inline subscription
	qos    byte
	prefix string // random, so correlation ids are unique across transports
	next   atomic.Uint64
	shards [shardCount]shard
	log    *slog.Logger

	done      chan struct{}
	closeOnce sync.Once
	slots     chan struct{}  // one per call in flight; nil: no cap
	inbox     chan inMessage // paho's messages, to the decode workers
	ready     atomic.Bool    // paho: connected and subscribed to the responses

	mu     sync.Mutex
	online []func(device string)

	sent, received, answered, presence                          atomic.Uint64
	dropTopic, dropMalformed, dropDevice, dropUnknown, dropCall atomic.Uint64
}

var (
	_ agent.Transport        = (*Transport)(nil)
	_ agent.PresenceNotifier = (*Transport)(nil)
)

// inMessage is a message from a response topic, waiting to be decoded.
type inMessage struct {
	topic   string
	payload []byte
}

type shard struct {
	mu    sync.Mutex
	calls map[uint64]*call
}

// call is one outstanding request. ch has room for the one answer, which is
// sent under the shard lock by whoever removes the call from the map.
type call struct {
	device string
	ch     chan *agent.Response
}

var callPool = sync.Pool{New: func() any { return &call{ch: make(chan *agent.Response, 1)} }}

// NewTransport connects to the broker and subscribes to every device's
// response topic. It returns once the subscription is in place, so no answer
// to a later Do is missed. It reconnects by itself after a lost connection.
func NewTransport(ctx context.Context, opts TransportOptions) (*Transport, error) {
	if err := checkBrokerURL(opts.BrokerURL); err != nil {
		return nil, err
	}
	qos, err := pickQoS(opts.QoS, opts.AtMostOnce)
	if err != nil {
		return nil, err
	}
	t, err := newTransport(qos, opts.Logger)
	if err != nil {
		return nil, err
	}
	switch {
	case opts.MaxInFlight == 0:
		t.slots = make(chan struct{}, DefaultMaxInFlight)
	case opts.MaxInFlight > 0:
		t.slots = make(chan struct{}, opts.MaxInFlight)
	}
	clientID := opts.ClientID
	if clientID == "" {
		clientID = orDefault(opts.Username, "fleetvault-server") + ":" + t.prefix[:6]
	}
	subscribed := make(chan error, 1)
	po := clientOptions(opts.BrokerURL, clientID, opts.Username, opts.Password, opts.TLSConfig, opts.ConnectTimeout)
	// A busy broker answers pings late; dropping the connection loses every
	// answer in flight, so the server waits longer than paho's 10 s.
	po.SetPingTimeout(30 * time.Second)
	po.SetOnConnectHandler(func(c paho.Client) {
		err := subscribe(c, agent.ResponseWildcard, qos, t.onMessage)
		if err != nil {
			t.log.Error("mqtt: subscribe to responses", "broker", opts.BrokerURL, "err", err)
		}
		t.ready.Store(err == nil)
		select {
		case subscribed <- err:
		default: // a reconnect: nobody waits
		}
	})
	po.SetConnectionLostHandler(func(_ paho.Client, err error) {
		t.ready.Store(false)
		t.log.Warn("mqtt: connection to broker lost; reconnecting", "broker", opts.BrokerURL, "err", err)
	})
	t.startWorkers()
	if opts.Background {
		po.SetConnectRetry(true).SetConnectRetryInterval(time.Second)
		t.client = paho.NewClient(po)
		t.client.Connect() // retries until it succeeds or Close
		return t, nil
	}
	t.client = paho.NewClient(po)
	if err := connect(ctx, t.client, opts.BrokerURL); err != nil {
		return nil, err
	}
	select {
	case err = <-subscribed:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		t.client.Disconnect(0)
		return nil, fmt.Errorf("mqtt: subscribe to %s at %s: %w", agent.ResponseWildcard, opts.BrokerURL, err)
	}
	return t, nil
}

// newTransport returns a Transport without its client.
func newTransport(qos byte, log *slog.Logger) (*Transport, error) {
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("mqtt: random correlation prefix: %w", err)
	}
	t := &Transport{qos: qos, prefix: hex.EncodeToString(rnd[:]) + "-", log: log, done: make(chan struct{})}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	for i := range t.shards {
		t.shards[i].calls = make(map[uint64]*call)
	}
	return t, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Do publishes req to the device target names and waits for its answer. See
// agent.Transport.
func (t *Transport) Do(ctx context.Context, target identifiers.ID, req *agent.Request) (*agent.Response, error) {
	select {
	case <-t.done:
		return nil, fmt.Errorf("mqtt: %w", agent.ErrClosed)
	default:
	}
	if target.Scheme != "" && target.Scheme != "mqtt" && target.Scheme != "mqtts" {
		return nil, fmt.Errorf("mqtt: identifier %s: scheme %s is not MQTT", target, target.Scheme)
	}
	device := target.Address
	if err := agent.CheckDeviceID(device); err != nil {
		return nil, fmt.Errorf("mqtt: identifier %s: %w", target, err)
	}
	if t.client != nil && !t.ready.Load() {
		return nil, fmt.Errorf("mqtt: %s: %w: not connected to the broker (connecting or reconnecting)", device, agent.ErrUnreachable)
	}
	if t.slots != nil {
		select {
		case t.slots <- struct{}{}:
			defer func() { <-t.slots }()
		case <-ctx.Done():
			return nil, fmt.Errorf("mqtt: %s: %w (%w, waiting for one of %d call slots)", device, agent.ErrTimeout, ctx.Err(), cap(t.slots))
		case <-t.done:
			return nil, fmt.Errorf("mqtt: %s: %w", device, agent.ErrClosed)
		}
	}
	n := t.next.Add(1)
	req.ID = t.prefix + strconv.FormatUint(n, 36)
	req.Ident = target.String()
	payload, err := agent.EncodeRequest(req)
	if err != nil {
		return nil, fmt.Errorf("mqtt: encode request to %s: %w", device, err)
	}

	c := callPool.Get().(*call)
	c.device = device
	sh := &t.shards[n%shardCount]
	sh.mu.Lock()
	sh.calls[n] = c
	sh.mu.Unlock()

	var tok paho.Token
	var published <-chan struct{}
	if t.inline != nil {
		err = t.inline.Publish(agent.RequestTopic(device), payload, t.qos)
		t.sent.Add(1)
		if err != nil {
			if resp := t.abandon(n, c); resp != nil {
				return resp, nil
			}
			return nil, fmt.Errorf("mqtt: publish to %s: %w: %v", device, agent.ErrUnreachable, err)
		}
	} else {
		tok = t.client.Publish(agent.RequestTopic(device), t.qos, false, payload)
		t.sent.Add(1)
		published = tok.Done()
	}
	for {
		select {
		case resp := <-c.ch:
			t.release(c)
			return resp, nil
		case <-published:
			published = nil
			if err := tok.Error(); err != nil {
				if resp := t.abandon(n, c); resp != nil {
					return resp, nil
				}
				return nil, fmt.Errorf("mqtt: publish to %s: %w: %v", device, agent.ErrUnreachable, err)
			}
		case <-ctx.Done():
			if resp := t.abandon(n, c); resp != nil {
				return resp, nil
			}
			return nil, fmt.Errorf("mqtt: %s: %w (%w)", device, agent.ErrTimeout, ctx.Err())
		case <-t.done:
			if resp := t.abandon(n, c); resp != nil {
				return resp, nil
			}
			return nil, fmt.Errorf("mqtt: %s: %w", device, agent.ErrClosed)
		}
	}
}

// abandon removes a call that stops waiting. If its answer was delivered in
// the meantime, that answer is returned rather than lost.
func (t *Transport) abandon(n uint64, c *call) *agent.Response {
	sh := &t.shards[n%shardCount]
	sh.mu.Lock()
	_, pending := sh.calls[n]
	delete(sh.calls, n)
	sh.mu.Unlock()
	var resp *agent.Response
	if !pending {
		resp = <-c.ch // delivered under the lock, so it is there
	}
	t.release(c)
	return resp
}

func (t *Transport) release(c *call) {
	c.device = ""
	callPool.Put(c)
}

// onMessage runs on its own goroutine for each message (OrderMatters is
// off). It hands the message to a decode worker: decoding on paho's fresh
// goroutine would grow its small stack for every message, which costs more
// than the decoding itself.
func (t *Transport) onMessage(_ paho.Client, m paho.Message) {
	select {
	case t.inbox <- inMessage{m.Topic(), m.Payload()}:
	case <-t.done:
	}
}

// startWorkers starts the goroutines that decode and deliver paho's
// messages; they stop when the transport closes.
func (t *Transport) startWorkers() {
	t.inbox = make(chan inMessage, 1024)
	for range max(2, runtime.GOMAXPROCS(0)) {
		go func() {
			for {
				select {
				case m := <-t.inbox:
					t.deliver(m.topic, m.payload)
				case <-t.done:
					return
				}
			}
		}()
	}
}

// deliver hands a message from a response topic to the call waiting for it,
// or drops and counts it. It never blocks.
func (t *Transport) deliver(topic string, payload []byte) {
	t.received.Add(1)
	device, ok := agent.ParseResponseTopic(topic)
	if !ok {
		t.drop(&t.dropTopic, DropTopic, topic, "")
		return
	}
	resp, err := agent.DecodeResponse(payload)
	if err != nil {
		t.drop(&t.dropMalformed, DropMalformed, device, err.Error())
		return
	}
	if resp.Device != device {
		t.drop(&t.dropDevice, DropDevice, device, fmt.Sprintf("device field %q", resp.Device))
		return
	}
	if resp.ID == "" {
		t.presence.Add(1)
		t.mu.Lock()
		fns := t.online
		t.mu.Unlock()
		for _, fn := range fns {
			fn(device)
		}
		return
	}
	n, ok := t.parseID(resp.ID)
	if !ok {
		t.drop(&t.dropUnknown, DropUnknownID, device, resp.ID)
		return
	}
	sh := &t.shards[n%shardCount]
	sh.mu.Lock()
	c := sh.calls[n]
	switch {
	case c == nil:
		sh.mu.Unlock()
		t.drop(&t.dropUnknown, DropUnknownID, device, resp.ID)
	case c.device != device:
		sh.mu.Unlock()
		t.drop(&t.dropCall, DropWrongDevice, device, "call was to "+c.device)
	default:
		delete(sh.calls, n)
		t.answered.Add(1) // before the caller wakes, so its Stats count this answer
		c.ch <- resp
		sh.mu.Unlock()
	}
}

func (t *Transport) parseID(id string) (uint64, bool) {
	rest, ok := strings.CutPrefix(id, t.prefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 36, 64)
	return n, err == nil
}

func (t *Transport) drop(counter *atomic.Uint64, reason, where, detail string) {
	counter.Add(1)
	t.log.Debug("mqtt: dropped message", "reason", reason, "device", where, "detail", detail)
}

// OnOnline registers fn to be called with a device's id whenever it announces
// itself (on every connect). fn must not block.
func (t *Transport) OnOnline(fn func(device string)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.online = append(t.online[:len(t.online):len(t.online)], fn)
}

// Connected reports whether the transport can send: an inline transport
// always can; a paho transport once it is connected and subscribed.
func (t *Transport) Connected() bool {
	return t.client == nil || t.ready.Load()
}

// Stats returns the transport's counters.
func (t *Transport) Stats() Stats {
	return Stats{
		Sent: t.sent.Load(), Received: t.received.Load(), Answered: t.answered.Load(), Presence: t.presence.Load(),
		Dropped: map[string]uint64{
			DropTopic: t.dropTopic.Load(), DropMalformed: t.dropMalformed.Load(), DropDevice: t.dropDevice.Load(),
			DropUnknownID: t.dropUnknown.Load(), DropWrongDevice: t.dropCall.Load(),
		},
	}
}

// Close disconnects from the broker; calls still waiting end with
// agent.ErrClosed. It may be called more than once.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		close(t.done)
		if t.inline != nil {
			t.unsub()
			return
		}
		t.client.Disconnect(250)
	})
	return nil
}

var errSubscriptionRefused = errors.New("the broker refused the subscription (check the ACL)")

// subscribe subscribes and waits, turning a refusal in the SUBACK into an error.
func subscribe(c paho.Client, topic string, qos byte, fn paho.MessageHandler) error {
	tok := c.Subscribe(topic, qos, fn)
	tok.Wait()
	if err := tok.Error(); err != nil {
		return err
	}
	if st, ok := tok.(*paho.SubscribeToken); ok && st.Result()[topic] == 0x80 {
		return errSubscriptionRefused
	}
	return nil
}
