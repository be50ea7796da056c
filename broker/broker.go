package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/time/rate"
)

// Options configure a Broker. Zero values take the defaults noted.
type Options struct {
	TCPAddr string // plain MQTT, e.g. ":1883" or "127.0.0.1:0"; "" for none
	TLSAddr string // MQTT over TLS, e.g. ":8883"; "" for none
	// CertFile and KeyFile are the TLS certificate (PEM, chain first) and key.
	CertFile, KeyFile string
	// SelfSigned makes an in-memory self-signed certificate for localhost
	// when no files are given. For development only.
	SelfSigned bool
	WSAddr     string // MQTT over WebSocket (ws://, subprotocol "mqtt"); "" for none

	// Credentials looks identities up. Required unless AllowAnonymous.
	Credentials Credentials
	// AllowAnonymous lets a client without a username connect as the device
	// its client id names (its own topics only; never server access).
	// Credentials that are presented are still checked.
	AllowAnonymous bool

	// Logger receives the broker's logs (nil: discarded). mochi's own
	// routine logging is lowered to debug.
	Logger *slog.Logger

	// Capacity, tuned for many idle devices; see docs/broker.md.
	MaxClients       int           // connections at once; 0 for no limit
	ReadBufferSize   int           // bytes per client read buffer; default 512
	WriteBufferSize  int           // bytes per client write batch; default 1024
	MaxPendingWrites int           // packets queued for one client before dropping; default 128
	MaxInflight      int           // unacknowledged QoS 1 messages kept for one client; default 1024
	MaxPacketSize    int           // bytes; default 2 MiB
	SessionExpiry    time.Duration // longest a disconnected persistent session is kept; default 10 min
	AuthCacheSize    int           // verified credentials remembered; default 100,000; negative: none
	MaxVerifying     int           // argon2id verifications at once; default 2 × GOMAXPROCS

	// Before login: what a connection may cost until it has authenticated.
	// See docs/broker.md, "Limits before login".
	ConnectTimeout time.Duration // from accept to a complete CONNECT; default 10 s
	MaxConnectSize int           // largest CONNECT packet (bytes) read before login; default 4 KiB (at most MaxPacketSize)
	// MaxUnauthenticatedPerAddr caps the connections from one address (an
	// IPv6 /64) that have not authenticated yet; default 100; negative: none.
	MaxUnauthenticatedPerAddr int
	ConnectRate               float64 // new connections a second from one address; default 50; negative: no limit
	ConnectBurst              int     // connections from one address allowed at once above ConnectRate; default 500
	// LimitLoopback applies the per-address limits and lockout to loopback
	// clients too. Off by default: connections from 127.0.0.1 and ::1 are the
	// server itself, the simulator, or a local proxy that makes every device
	// look like one address.
	LimitLoopback bool

	// Failed logins: a client id (a known identity) or an address that fails
	// this many times within LockoutWindow is locked out for LockoutDuration,
	// doubling with each repeat up to MaxLockout. Negative thresholds disable.
	LockoutThreshold     int           // per identity; default 10
	LockoutAddrThreshold int           // per address (IPv6 /64); default 100
	LockoutWindow        time.Duration // default 10 min
	LockoutDuration      time.Duration // default 1 min
	MaxLockout           time.Duration // default 30 min

	// Now is the clock of the connection-rate limits and lockouts (nil:
	// time.Now); tests inject one. Socket deadlines use the real clock.
	Now func() time.Time
}

// Defaults for Options.
const (
	DefaultReadBufferSize   = 512
	DefaultWriteBufferSize  = 1024
	DefaultMaxPendingWrites = 128
	DefaultMaxInflight      = 1024
	DefaultMaxPacketSize    = 2 << 20
	DefaultSessionExpiry    = 10 * time.Minute
	DefaultAuthCacheSize    = 100_000

	DefaultConnectTimeout            = 10 * time.Second
	DefaultMaxConnectSize            = 4 << 10
	minConnectSize                   = 128
	DefaultMaxUnauthenticatedPerAddr = 100
	DefaultConnectRate               = 50
	DefaultConnectBurst              = 500
	DefaultLockoutThreshold          = 10
	DefaultLockoutAddrThreshold      = 100
	DefaultLockoutWindow             = 10 * time.Minute
	DefaultLockoutDuration           = time.Minute
	DefaultMaxLockout                = 30 * time.Minute
)

func (o *Options) setDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.ReadBufferSize, DefaultReadBufferSize)
	def(&o.WriteBufferSize, DefaultWriteBufferSize)
	def(&o.MaxPendingWrites, DefaultMaxPendingWrites)
	def(&o.MaxInflight, DefaultMaxInflight)
	def(&o.MaxPacketSize, DefaultMaxPacketSize)
	def(&o.MaxVerifying, 2*runtime.GOMAXPROCS(0))
	if o.AuthCacheSize == 0 {
		o.AuthCacheSize = DefaultAuthCacheSize
	}
	if o.SessionExpiry <= 0 {
		o.SessionExpiry = DefaultSessionExpiry
	}
	if o.Logger == nil {
		o.Logger = slog.New(discard{})
	}
	o.setLimitDefaults()
}

// setLimitDefaults fills in the before-login limits and the lockout.
func (o *Options) setLimitDefaults() {
	dur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	zero := func(v *int, d int) { // 0 takes the default; negative means no limit
		if *v == 0 {
			*v = d
		}
	}
	dur(&o.ConnectTimeout, DefaultConnectTimeout)
	dur(&o.LockoutWindow, DefaultLockoutWindow)
	dur(&o.LockoutDuration, DefaultLockoutDuration)
	dur(&o.MaxLockout, DefaultMaxLockout)
	if o.MaxConnectSize <= 0 {
		o.MaxConnectSize = min(DefaultMaxConnectSize, o.MaxPacketSize)
	}
	zero(&o.MaxUnauthenticatedPerAddr, DefaultMaxUnauthenticatedPerAddr)
	zero(&o.ConnectBurst, DefaultConnectBurst)
	zero(&o.LockoutThreshold, DefaultLockoutThreshold)
	zero(&o.LockoutAddrThreshold, DefaultLockoutAddrThreshold)
	if o.ConnectRate == 0 {
		o.ConnectRate = DefaultConnectRate
	}
	if o.MaxLockout < o.LockoutDuration {
		o.MaxLockout = o.LockoutDuration
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

func (o *Options) check() error {
	switch {
	case o.TCPAddr == "" && o.TLSAddr == "" && o.WSAddr == "":
		return errors.New("broker: no listener: set TCPAddr, TLSAddr or WSAddr")
	case o.Credentials == nil && !o.AllowAnonymous:
		return errors.New("broker: no Credentials, and AllowAnonymous is off: nobody could connect")
	case o.MaxPendingWrites > math.MaxInt32, o.MaxInflight > math.MaxUint16:
		return fmt.Errorf("broker: MaxPendingWrites %d or MaxInflight %d too large (max %d, %d)",
			o.MaxPendingWrites, o.MaxInflight, math.MaxInt32, math.MaxUint16)
	case o.MaxPacketSize > math.MaxUint32:
		return fmt.Errorf("broker: MaxPacketSize %d too large", o.MaxPacketSize)
	case o.MaxConnectSize > o.MaxPacketSize:
		return fmt.Errorf("broker: MaxConnectSize %d exceeds MaxPacketSize %d", o.MaxConnectSize, o.MaxPacketSize)
	case o.MaxConnectSize < minConnectSize:
		return fmt.Errorf("broker: MaxConnectSize %d is below %d bytes: no real CONNECT would fit", o.MaxConnectSize, minConnectSize)
	}
	return nil
}

// Broker is the embedded MQTT broker: mochi with Fleetvault's device
// authentication, topic ACL and presence.
type Broker struct {
	opts  Options
	log   *slog.Logger
	srv   *mqtt.Server
	creds Credentials

	tlsConf *tls.Config
	cert    *x509.Certificate
	tcp     *netListener
	tlsL    *netListener
	ws      *wsListener

	cache     *authCache
	verifySem chan struct{}
	gate      *gate
	idLock    *lockout // failed logins per identity
	addrLock  *lockout // failed logins per address
	servers   sync.Map // *mqtt.Client → struct{}: connections with a server identity
	stats     counters
	warnLimit *rate.Limiter
	subID     atomic.Int64

	mu           sync.Mutex
	online       map[string]*mqtt.Client // connected clients by client id
	onConnect    []func(clientID string)
	onDisconnect []func(clientID string)
	started      bool
	closed       bool
	done         chan struct{}
}

// New checks opts and prepares a broker; Start binds its listeners.
func New(opts Options) (*Broker, error) {
	opts.setDefaults()
	if err := opts.check(); err != nil {
		return nil, err
	}
	b := &Broker{
		opts:      opts,
		log:       opts.Logger,
		creds:     opts.Credentials,
		cache:     newAuthCache(opts.AuthCacheSize),
		verifySem: make(chan struct{}, opts.MaxVerifying),
		warnLimit: rate.NewLimiter(10, 20),
		online:    make(map[string]*mqtt.Client),
		done:      make(chan struct{}),
	}
	if b.creds == nil {
		b.creds = StaticCredentials{}
	}
	b.gate = newGate(b)
	b.idLock = newLockout(opts.LockoutThreshold, opts.LockoutWindow, opts.LockoutDuration, opts.MaxLockout)
	b.addrLock = newLockout(opts.LockoutAddrThreshold, opts.LockoutWindow, opts.LockoutDuration, opts.MaxLockout)
	if opts.TLSAddr != "" {
		conf, cert, err := tlsConfig(opts)
		if err != nil {
			return nil, err
		}
		b.tlsConf, b.cert = conf, cert
	}
	b.srv = mqtt.New(b.mochiOptions())
	if err := b.srv.AddHook(&hook{b: b}, nil); err != nil {
		return nil, fmt.Errorf("broker: add hook: %w", err)
	}
	return b, nil
}

// mochiOptions translates Options into mochi's options and capabilities.
func (b *Broker) mochiOptions() *mqtt.Options {
	o := b.opts
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumClients = math.MaxInt64
	if o.MaxClients > 0 {
		caps.MaximumClients = int64(o.MaxClients)
	}
	caps.MaximumClientWritesPending = int32(o.MaxPendingWrites)
	caps.MaximumInflight = uint16(o.MaxInflight)
	caps.MaximumPacketSize = uint32(o.MaxPacketSize)
	caps.MaximumSessionExpiryInterval = uint32(o.SessionExpiry / time.Second)
	caps.MaximumMessageExpiryInterval = int64(o.SessionExpiry / time.Second)
	caps.ReceiveMaximum = 256
	caps.TopicAliasMaximum = 16
	caps.RetainAvailable = 0 // the protocol never retains; a device must not store messages on the broker
	return &mqtt.Options{
		Capabilities:             caps,
		ClientNetReadBufferSize:  o.ReadBufferSize,
		ClientNetWriteBufferSize: o.WriteBufferSize,
		Logger:                   slog.New(quietHandler{o.Logger.Handler()}).With("component", "mochi"),
		SysTopicResendInterval:   60,
		InlineClient:             true,
	}
}

// Start binds the configured listeners and serves in the background until
// ctx ends or Close is called. Start may be called once.
func (b *Broker) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started || b.closed {
		return errors.New("broker: Start called twice, or after Close")
	}
	b.started = true
	if err := b.addListeners(); err != nil {
		b.closed = true
		close(b.done)
		_ = b.srv.Close()
		return err
	}
	if err := b.srv.Serve(); err != nil {
		b.closed = true
		close(b.done)
		_ = b.srv.Close()
		return fmt.Errorf("broker: serve: %w", err)
	}
	b.log.Info("mqtt broker started", "tcp", addrOf(b.tcp), "tls", addrOf(b.tlsL), "ws", addrOf(b.ws))
	go func() {
		select {
		case <-ctx.Done():
			_ = b.Close()
		case <-b.done:
		}
	}()
	return nil
}

// addListeners binds each configured address, naming it in errors.
func (b *Broker) addListeners() error {
	if addr := b.opts.TCPAddr; addr != "" {
		b.tcp = &netListener{id: "tcp", listen: func() (net.Listener, error) { return net.Listen("tcp", addr) }, gate: b.gate, closeClients: b.closeListenerClients}
		if err := b.srv.AddListener(b.tcp); err != nil {
			return fmt.Errorf("broker: listen on TCPAddr %s: %w", addr, err)
		}
	}
	if addr := b.opts.TLSAddr; addr != "" {
		conf := b.tlsConf
		b.tlsL = &netListener{id: "tls", listen: func() (net.Listener, error) { return tls.Listen("tcp", addr, conf) }, gate: b.gate, closeClients: b.closeListenerClients}
		if err := b.srv.AddListener(b.tlsL); err != nil {
			return fmt.Errorf("broker: listen on TLSAddr %s: %w", addr, err)
		}
	}
	if addr := b.opts.WSAddr; addr != "" {
		b.ws = &wsListener{id: "ws", addr: addr, gate: b.gate, closeClients: b.closeListenerClients}
		if err := b.srv.AddListener(b.ws); err != nil {
			return fmt.Errorf("broker: listen on WSAddr %s: %w", addr, err)
		}
	}
	return nil
}

// Serve starts the broker and blocks until ctx ends, then closes it.
func (b *Broker) Serve(ctx context.Context) error {
	if err := b.Start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-b.done:
	}
	return b.Close()
}

// Close disconnects every client, stops the listeners and waits (up to a few
// seconds) for the connections to end. It is safe to call more than once.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	started := b.started
	close(b.done)
	b.mu.Unlock()
	if !started {
		return nil
	}
	b.gate.close()
	err := b.srv.Close()
	waited := make(chan struct{})
	go func() {
		b.srv.Listeners.ClientsWg.Wait()
		close(waited)
	}()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		b.log.Warn("mqtt broker closed with connections still ending")
	}
	if err != nil {
		return fmt.Errorf("broker: close: %w", err)
	}
	return nil
}

// Addr returns the address the plain TCP listener is bound to (the real port
// when configured with ":0"), or nil if there is none or it is not started.
func (b *Broker) Addr() net.Addr { return netAddr(b.tcpListener()) }

// TLSAddr returns the address the TLS listener is bound to, or nil.
func (b *Broker) TLSAddr() net.Addr { return netAddr(b.lis(func() *netListener { return b.tlsL })) }

// WSAddr returns the address the WebSocket listener is bound to, or nil.
func (b *Broker) WSAddr() net.Addr {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ws == nil || b.ws.ln == nil {
		return nil
	}
	return b.ws.ln.Addr()
}

func (b *Broker) tcpListener() *netListener { return b.lis(func() *netListener { return b.tcp }) }

func (b *Broker) lis(get func() *netListener) *netListener {
	b.mu.Lock()
	defer b.mu.Unlock()
	return get()
}

func netAddr(l *netListener) net.Addr {
	if l == nil || l.ln == nil {
		return nil
	}
	return l.ln.Addr()
}

func addrOf(l interface{ Address() string }) string {
	switch v := l.(type) {
	case *netListener:
		if v == nil {
			return ""
		}
	case *wsListener:
		if v == nil {
			return ""
		}
	}
	return l.Address()
}

// CertPool returns a pool holding the TLS certificate the broker serves, for
// clients of a self-signed development broker; nil without TLS.
func (b *Broker) CertPool() *x509.CertPool {
	if b.cert == nil {
		return nil
	}
	p := x509.NewCertPool()
	p.AddCert(b.cert)
	return p
}

// warn logs at warn level, at most about ten a second: a rogue device must not
// flood the log. Suppressed lines are counted in the next one that passes.
func (b *Broker) warn(msg string, args ...any) {
	if !b.warnLimit.Allow() {
		b.stats.suppressed.Add(1)
		return
	}
	if n := b.stats.suppressed.Swap(0); n > 0 {
		args = append(args, "suppressed_since_last", n)
	}
	b.log.Warn(msg, args...)
}

// Publish sends payload to topic from inside the process, through mochi's
// inline client: no network, no ACL (the embedding server is trusted). QoS 1
// is delivered to QoS 1 subscribers.
func (b *Broker) Publish(topic string, payload []byte, qos byte) error {
	if qos > 1 {
		return fmt.Errorf("broker: publish to %s: qos %d not supported (0 or 1)", truncate(topic), qos)
	}
	if err := b.srv.Publish(topic, payload, false, qos); err != nil {
		return fmt.Errorf("broker: publish to %s: %w", truncate(topic), err)
	}
	return nil
}

// Subscribe calls fn, from inside the process, for every message published
// to a topic matching filter (e.g. ResponseFilter), until the returned cancel
// is called. fn runs on the publishing client's goroutine: it must not block
// (hand the message to a channel or a worker). payload is fn's own copy.
func (b *Broker) Subscribe(filter string, fn func(topic string, payload []byte)) (cancel func(), err error) {
	id := int(b.subID.Add(1))
	err = b.srv.Subscribe(filter, id, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		fn(pk.TopicName, append([]byte(nil), pk.Payload...))
	})
	if err != nil {
		return nil, fmt.Errorf("broker: subscribe to %s: %w", truncate(filter), err)
	}
	var once sync.Once
	return func() { once.Do(func() { _ = b.srv.Unsubscribe(filter, id) }) }, nil
}

// closeListenerClients disconnects the clients of one listener when it
// closes. It replaces mochi's own (Clients.GetByListener), which takes the
// client map's read lock twice: with a disconnecting client's Delete queued
// between the two, the second read lock waits for the writer and the writer
// for the first, and Close hangs for ever.
func (b *Broker) closeListenerClients(id string, _ listeners.CloseFn) {
	for _, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Listener == id && !cl.Closed() {
			_ = b.srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
		}
	}
}
