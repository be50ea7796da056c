package devicesim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetvault/fleetvault/agent/coap"
)

// Options configure a running fleet. The zero value is usable for a fleet
// without MQTT devices.
type Options struct {
	// BrokerURL is the MQTT broker the devices connect to: mqtt://host:port,
	// tcp://host:port or host:port. Required when the fleet has MQTT devices.
	BrokerURL string
	// Secret gives each device its secret (its MQTT password). Default
	// DefaultSecret(seed).
	Secret func(deviceID string) string
	// CoAPHost is the address CoAP devices listen on, each on its own port;
	// default 127.0.0.1.
	CoAPHost string
	// CoAPKey gives each CoAP device its DTLS pre-shared key. Default
	// DefaultCoAPKey(seed).
	CoAPKey func(deviceID string) []byte
	// InsecureCoAP makes CoAP devices serve plain CoAP (coap://), for a lab;
	// by default they serve only CoAP over DTLS (coaps://) and refuse plain
	// requests.
	InsecureCoAP bool
	// Seed makes the fleet; 0 uses the fleet file's seed.
	Seed uint64
	// Logger receives the fleet's logs; nil discards them.
	Logger *slog.Logger
	// MQTTVersion is 4 (MQTT 3.1.1, default) or 5.
	MQTTVersion byte
	// Keepalive of the devices' MQTT sessions; default 60s.
	Keepalive time.Duration
	// DialConcurrency bounds connections being set up at once; default 64.
	DialConcurrency int
	// Echo makes MQTT devices publish every request back untouched instead of
	// answering it: the ceiling of the transport, for benchmarks.
	Echo bool
}

// Stats count what a fleet did.
type Stats struct {
	Devices       int    // in the fleet
	Online        int    // connected (MQTT) or serving (CoAP) now
	Offline       int    // never coming online (offline fault)
	Waiting       int    // late joiners not yet online, rebooting devices
	Requests      uint64 // requests received
	Answered      uint64 // answers sent
	Ignored       uint64 // requests not answered (drop fault, undecodable)
	Writes        uint64 // writes received
	Reboots       uint64 // reboots during a write
	Connects      uint64 // successful connections, reconnections included
	ConnectErrors uint64 // failed connection attempts
}

// Fleet is a running set of simulated devices.
type Fleet struct {
	spec    *Spec
	opts    Options
	seed    uint64
	log     *slog.Logger
	addr    string // broker host:port
	hasMQTT bool
	devs    []*Device
	byID    map[string]*Device
	links   []link

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	dial   chan struct{} // semaphore for connection setup
	group  *coap.Group

	mu      sync.Mutex
	started bool
	closed  bool
	echo    atomic.Bool

	warnedConnect atomic.Bool // the first connection failure is logged at warn, the rest at debug

	online, offline, waiting                     atomic.Int64
	requests, answered, ignored, writes, reboots atomic.Uint64
	connects, connectErrors                      atomic.Uint64
}

// quietLogger is the devices' handlers' logger: their per-request refusals
// are what a test provokes, not news.
var quietLogger = slog.New(slog.DiscardHandler)

// link is one device's transport: it connects, reconnects and serves.
type link interface {
	start()
	close()
}

// New expands spec into devices without connecting them (CoAP devices reserve
// their UDP ports, so Devices has every address). Call Start to bring them up.
func New(spec *Spec, opts Options) (*Fleet, error) {
	seed := opts.Seed
	if seed == 0 {
		seed = spec.Seed
	}
	if opts.Secret == nil {
		opts.Secret = DefaultSecret(seed)
	}
	if opts.CoAPHost == "" {
		opts.CoAPHost = "127.0.0.1"
	}
	if opts.CoAPKey == nil {
		opts.CoAPKey = DefaultCoAPKey(seed)
	}
	if opts.DialConcurrency <= 0 {
		opts.DialConcurrency = 64
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	plan, err := spec.plan(seed, opts.Secret)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Fleet{spec: spec, opts: opts, seed: seed, log: log, byID: make(map[string]*Device, len(plan)),
		ctx: ctx, cancel: cancel, dial: make(chan struct{}, opts.DialConcurrency)}
	for i, p := range plan {
		if p.info.Transport == TransportCoAP && !opts.InsecureCoAP {
			p.info.Identifier.Scheme = "coaps"
			if p.info.CoAPKey = opts.CoAPKey(p.info.ID); coap.CheckKey(p.info.CoAPKey) != nil {
				return nil, fmt.Errorf("devicesim: device %s: %w", p.info.ID, coap.CheckKey(p.info.CoAPKey))
			}
		}
		d := newDevice(p, seed, i, quietLogger)
		d.fleet = f
		f.devs = append(f.devs, d)
		f.byID[d.info.ID] = d
	}
	f.echo.Store(opts.Echo)
	if err := f.makeLinks(); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (f *Fleet) makeLinks() error {
	for _, d := range f.devs {
		switch d.info.Transport {
		case TransportMQTT:
			f.hasMQTT = true
			f.links = append(f.links, newMQTTLink(f, d))
		case TransportCoAP:
			if f.group == nil {
				f.group = coap.NewGroup()
			}
			l, err := newCoAPLink(f, d)
			if err != nil {
				return err
			}
			f.links = append(f.links, l)
		}
	}
	if f.opts.BrokerURL != "" {
		return f.SetBrokerURL(f.opts.BrokerURL)
	}
	return nil
}

// SetBrokerURL sets the broker MQTT devices connect to, before Start: a
// caller can make the fleet, provision the broker with its devices, then
// start the broker and the fleet.
func (f *Fleet) SetBrokerURL(u string) error {
	addr, err := brokerAddr(u)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started {
		return errors.New("devicesim: the broker of a started fleet cannot change")
	}
	f.addr = addr
	return nil
}

// brokerAddr turns mqtt://host:port, tcp://host:port or host:port into host:port.
func brokerAddr(s string) (string, error) {
	hostport := s
	if u, err := url.Parse(s); err == nil && u.Scheme != "" && u.Host != "" {
		switch u.Scheme {
		case "mqtt", "tcp":
			hostport = u.Host
		default:
			return "", fmt.Errorf("devicesim: broker URL %q: scheme %s is not served by the simulator; use mqtt:// or tcp://", s, u.Scheme)
		}
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || port == "" {
		return "", fmt.Errorf("devicesim: broker URL %q: expected mqtt://host:port", s)
	}
	return net.JoinHostPort(host, port), nil
}

// Start is New followed by Fleet.Start.
func Start(ctx context.Context, spec *Spec, opts Options) (*Fleet, error) {
	f, err := New(spec, opts)
	if err != nil {
		return nil, err
	}
	if err := f.Start(ctx); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Start brings the devices up: each connects (or starts serving) now, after
// its late delay, or never (offline). It returns once every device due now has
// tried once; devices that failed (say, credentials not yet provisioned) keep
// retrying in the background. WaitOnline waits for them.
func (f *Fleet) Start(ctx context.Context) error {
	f.mu.Lock()
	if f.started || f.closed {
		f.mu.Unlock()
		return errors.New("devicesim: fleet already started or closed")
	}
	if f.hasMQTT && f.addr == "" {
		f.mu.Unlock()
		return errors.New("devicesim: the fleet has MQTT devices: a broker URL is needed (Options.BrokerURL or SetBrokerURL, mqtt://host:port)")
	}
	f.started = true
	f.mu.Unlock()
	var first sync.WaitGroup
	for i, d := range f.devs {
		fl := d.info.Faults
		switch {
		case fl.Offline:
			f.offline.Add(1)
		case fl.LateAfter > 0:
			f.waiting.Add(1)
			l := f.links[i]
			time.AfterFunc(fl.LateAfter, func() {
				if f.ctx.Err() == nil {
					f.waiting.Add(-1)
					l.start()
				}
			})
		default:
			first.Add(1)
			l := f.links[i]
			go func() {
				defer first.Done()
				l.start()
			}()
		}
	}
	done := make(chan struct{})
	go func() { first.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("devicesim: start: %w", ctx.Err())
	}
	st := f.Stats()
	f.log.Info("devicesim: fleet started", "fleet", f.spec.Name, "devices", st.Devices, "online", st.Online,
		"offline", st.Offline, "waiting", st.Waiting, "connect_errors", st.ConnectErrors)
	return nil
}

// WaitOnline waits until every device that should be online now is: all but
// the offline ones, late joiners not yet due and rebooting devices.
func (f *Fleet) WaitOnline(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		online, offline, waiting := f.online.Load(), f.offline.Load(), f.waiting.Load()
		if int(online+offline+waiting) >= len(f.devs) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("devicesim: %d of %d devices online (%d offline, %d waiting): %w",
				online, len(f.devs), offline, waiting, ctx.Err())
		case <-t.C:
		}
	}
}

// SetEcho switches MQTT devices between answering requests (false) and
// publishing them back untouched (true), for measuring the transport's
// ceiling with the same connections.
func (f *Fleet) SetEcho(on bool) { f.echo.Store(on) }

// Devices lists the fleet's devices in file order.
func (f *Fleet) Devices() []DeviceInfo {
	out := make([]DeviceInfo, len(f.devs))
	for i, d := range f.devs {
		out[i] = d.Info()
	}
	return out
}

// Device returns the device with that id, or nil.
func (f *Fleet) Device(id string) *Device { return f.byID[id] }

// Spec returns the fleet file the fleet was made from.
func (f *Fleet) Spec() *Spec { return f.spec }

// Seed returns the seed the fleet was made with.
func (f *Fleet) Seed() uint64 { return f.seed }

// Stats returns the fleet's counters. For CoAP devices, whose answers
// agent/coap's server sends, Answered is read from every device's server.
func (f *Fleet) Stats() Stats {
	answered := f.answered.Load()
	if f.group != nil {
		for _, l := range f.links {
			if c, ok := l.(*coapLink); ok {
				answered += c.answered()
			}
		}
	}
	return Stats{
		Devices: len(f.devs), Online: int(f.online.Load()), Offline: int(f.offline.Load()), Waiting: int(f.waiting.Load()),
		Requests: f.requests.Load(), Answered: answered, Ignored: f.ignored.Load(),
		Writes: f.writes.Load(), Reboots: f.reboots.Load(),
		Connects: f.connects.Load(), ConnectErrors: f.connectErrors.Load(),
	}
}

// Close disconnects every device and releases their ports.
func (f *Fleet) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	f.mu.Unlock()
	f.cancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, l := range f.links {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			l.close()
		}()
	}
	wg.Wait()
	f.wg.Wait()
	if f.group != nil {
		f.group.Close()
	}
	return nil
}
