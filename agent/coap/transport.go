package coap

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/identifiers"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	coapnet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/pkg/runner/periodic"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"
	udpserver "github.com/plgd-dev/go-coap/v3/udp/server"
)

// Defaults of TransportOptions.
const (
	DefaultMaxPeers         = 16384
	DefaultIdleTimeout      = 30 * time.Second
	DefaultAckTimeout       = 2 * time.Second // RFC 7252 ACK_TIMEOUT
	DefaultMaxRetransmit    = 4               // RFC 7252 MAX_RETRANSMIT
	DefaultTimeout          = 30 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
)

// transportMaxDatagram is the largest datagram the transport reads: it holds a
// single read buffer, so it can afford the largest UDP payload.
const transportMaxDatagram = 64 << 10

// socketBuffer is the kernel buffer the transport asks for its socket.
const socketBuffer = 4 << 20

// TransportOptions tune a Transport. The zero value is usable.
type TransportOptions struct {
	Logger *slog.Logger
	// Listen is the local address of the transport's one UDP socket; "" means
	// ":0" (any address, a free port, IPv4 and IPv6).
	Listen string
	// MaxPeers bounds the devices the transport keeps exchange state for;
	// beyond it the least recently used idle peer is forgotten. 0 means
	// DefaultMaxPeers.
	MaxPeers int
	// IdleTimeout is how long the state of a silent peer is kept; 0 means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// AckTimeout and MaxRetransmit are the CoAP retransmission parameters of
	// confirmable requests; 0 means the RFC 7252 defaults.
	AckTimeout    time.Duration
	MaxRetransmit int
	// Timeout bounds an exchange whose context has no deadline; 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// MaxInFlight bounds the exchanges outstanding at once on the socket;
	// more wait for a free slot (until their context ends). It keeps a burst
	// of answers within the socket's receive buffer, where an overflow is a
	// drop and a retransmission seconds later. 0 means one per KiB of the
	// receive buffer the kernel granted, at least 64.
	MaxInFlight int
	// HandshakeTimeout bounds a DTLS handshake; 0 means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// Keys finds a device's pre-shared key for coaps:// identifiers
	// (docs/spec/agent-coap.md, "Security"); nil means the transport has no
	// keys and every coaps:// exchange fails with ErrNoKey.
	Keys KeyFunc
	// Insecure allows plain CoAP (coap:// identifiers), for a lab. Without
	// it such an exchange fails with ErrInsecure and nothing is sent.
	Insecure bool
}

// TransportStats counts the transport's exchanges.
type TransportStats struct {
	Requests          uint64 // exchanges started
	Timeouts          uint64 // ended with ErrTimeout
	Failures          uint64 // ended with another error (unreachable, malformed answer)
	Peers             int    // devices with exchange state now
	Evictions         uint64 // peers forgotten to stay under MaxPeers
	Dropped           uint64 // blocks dropped past the message limit
	Malformed         uint64 // datagrams or exchanges the CoAP layer failed on
	Retransmits       uint64 // requests sent again for want of an answer (lean path)
	Blockwise         uint64 // exchanges carried blockwise by go-coap
	Sessions          int    // DTLS sessions open now (coaps://)
	Handshakes        uint64 // DTLS handshakes started
	HandshakeFailures uint64 // DTLS handshakes that failed or went unanswered
}

// Transport is the server side of the protocol over CoAP. One UDP socket
// carries the exchanges with every device, one goroutine reads it and hands
// each answer to the exchange waiting for it; each device's exchange state
// (message ids, the exchange outstanding) lives only while the device is in
// use. Requests or answers that need more than one block travel blockwise
// through go-coap, from a second socket (doc.go, "Server side").
type Transport struct {
	conn     *net.UDPConn // the lean path's socket
	srv      *udpserver.Server
	bwConn   *net.UDPConn // go-coap's socket, for blockwise transfers
	log      *slog.Logger
	opts     TransportOptions
	prefix   string
	seq      atomic.Uint64
	served   chan error
	readDone chan struct{}
	done     chan struct{} // closed by Close: ends exchanges and housekeeping
	stop     chan struct{} // stops go-coap's housekeeping timer
	closed   atomic.Bool

	window chan struct{} // a slot per exchange outstanding (MaxInFlight)

	mu    sync.RWMutex
	peers map[netip.AddrPort]*peer

	namesMu sync.Mutex
	names   map[string]name // resolved device names (peers.go)

	sdg      *datagrams    // the secure socket, split per DTLS session
	ticker   periodic.Func // go-coap's housekeeping timer
	sessMu   sync.Mutex
	sessions map[netip.AddrPort]*session // DTLS sessions (transportsecure.go)

	handshakes, handshakeFailures atomic.Uint64

	requests, timeouts, failures, evictions, dropped, malformed, retransmits, blockwise atomic.Uint64
}

var _ agent.Transport = (*Transport)(nil)

// NewTransport binds the transport's sockets and starts reading them.
func NewTransport(opts TransportOptions) (*Transport, error) {
	opts = withDefaults(opts)
	la, err := net.ResolveUDPAddr("udp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("coap: transport: listen %s: %w", opts.Listen, err)
	}
	conn, err := listenDeep(la)
	if err != nil {
		return nil, fmt.Errorf("coap: transport: listen %s: %w", opts.Listen, err)
	}
	bwConn, err := listenDeep(&net.UDPAddr{IP: la.IP, Zone: la.Zone})
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("coap: transport: listen %s for blockwise transfers: %w", la.IP, err)
	}
	sConn, err := listenDeep(&net.UDPAddr{IP: la.IP, Zone: la.Zone})
	if err != nil {
		_ = conn.Close()
		_ = bwConn.Close()
		return nil, fmt.Errorf("coap: transport: listen %s for DTLS: %w", la.IP, err)
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = max(64, receiveBuffer(conn)/1024)
	}
	var id [6]byte
	_, _ = crand.Read(id[:])
	t := &Transport{
		window: make(chan struct{}, opts.MaxInFlight),
		conn:   conn, bwConn: bwConn, log: opts.Logger, opts: opts, prefix: hex.EncodeToString(id[:]) + "-",
		served: make(chan error, 1), readDone: make(chan struct{}), done: make(chan struct{}), stop: make(chan struct{}),
		peers: make(map[netip.AddrPort]*peer), names: make(map[string]name),
		sdg: newDatagrams(sConn, false, 0, nil), sessions: make(map[netip.AddrPort]*session),
	}
	// go-coap calls the periodic runner once Serve has taken the socket: that
	// is when NewConn starts to work.
	started := make(chan struct{})
	ticker := periodic.New(t.stop, time.Second)
	t.ticker = ticker
	runner := func(f func(time.Time) bool) {
		ticker(f)
		close(started)
	}
	t.srv = udpserver.New(
		options.WithPeriodicRunner(runner),
		options.WithErrors(t.coapError),
		options.WithMaxMessageSize(transportMaxDatagram),
		options.WithBlockwise(true, blockSZX, blockwiseTimeout),
		options.WithTransmission(1, opts.AckTimeout, uint32(opts.MaxRetransmit)),
		options.WithInactivityMonitor(opts.IdleTimeout, func(cc *udpclient.Conn) { _ = cc.Close() }),
		options.WithRequestMonitor(udpclient.RequestMonitorFunc(t.monitor)),
		options.WithMessagePool(pool.New(256, 2048)),
	)
	go func() { t.served <- t.srv.Serve(coapnet.NewUDPConn("udp", bwConn)) }()
	select {
	case <-started:
	case err := <-t.served:
		close(t.stop)
		_ = conn.Close()
		_ = bwConn.Close()
		_ = sConn.Close()
		return nil, fmt.Errorf("coap: transport: serve %s: %w", bwConn.LocalAddr(), err)
	}
	go t.readLoop()
	go t.sdg.run(transportMaxDatagram)
	go t.housekeep()
	return t, nil
}

// listenDeep binds a UDP socket with deep kernel buffers: answers from
// thousands of devices arrive on it, and a burst that overflows the buffer
// is dropped and retransmitted seconds later. The kernel caps the buffers at
// net.core.rmem_max and wmem_max.
func listenDeep(la *net.UDPAddr) (*net.UDPConn, error) {
	conn, err := net.ListenUDP("udp", la)
	if err != nil {
		return nil, err
	}
	_ = conn.SetReadBuffer(socketBuffer)
	_ = conn.SetWriteBuffer(socketBuffer)
	return conn, nil
}

// receiveBuffer is the receive buffer the kernel granted conn, in bytes (0
// when it cannot say).
func receiveBuffer(conn *net.UDPConn) int {
	raw, err := conn.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	_ = raw.Control(func(fd uintptr) {
		n, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	})
	return n
}

func withDefaults(o TransportOptions) TransportOptions {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Listen == "" {
		o.Listen = ":0"
	}
	if o.MaxPeers <= 0 {
		o.MaxPeers = DefaultMaxPeers
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = DefaultAckTimeout
	}
	if o.MaxRetransmit <= 0 {
		o.MaxRetransmit = DefaultMaxRetransmit
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	return o
}

// Addr returns the local address of the transport's socket.
func (t *Transport) Addr() net.Addr { return t.conn.LocalAddr() }

// Stats returns the transport's counters.
func (t *Transport) Stats() TransportStats {
	t.mu.RLock()
	n := len(t.peers)
	t.mu.RUnlock()
	return TransportStats{
		Requests: t.requests.Load(), Timeouts: t.timeouts.Load(), Failures: t.failures.Load(), Peers: n,
		Evictions: t.evictions.Load(), Dropped: t.dropped.Load(), Malformed: t.malformed.Load(),
		Retransmits: t.retransmits.Load(), Blockwise: t.blockwise.Load(),
		Sessions: t.sdg.peerCount(), Handshakes: t.handshakes.Load(), HandshakeFailures: t.handshakeFailures.Load(),
	}
}

// Close stops the transport; outstanding exchanges end with ErrClosed.
func (t *Transport) Close() error {
	if t.closed.Swap(true) {
		return nil
	}
	close(t.done)
	_ = t.conn.Close()
	<-t.readDone
	t.srv.Stop()
	_ = t.bwConn.Close()
	t.closeSessions()
	<-t.served
	close(t.stop)
	t.mu.Lock()
	t.peers = make(map[netip.AddrPort]*peer)
	t.mu.Unlock()
	return nil
}

func (t *Transport) coapError(err error) {
	t.malformed.Add(1)
	t.log.Debug("coap: transport", "err", err)
}

func (t *Transport) monitor(_ *udpclient.Conn, m *pool.Message) (bool, error) {
	if overLimit(m) {
		t.dropped.Add(1)
		return true, nil
	}
	return false, nil
}

// Do sends req to the device target names and waits for its answer; see
// agent.Transport. The identifier's method and location choose the CoAP
// method and resource (docs/spec/agent-coap.md).
func (t *Transport) Do(ctx context.Context, target identifiers.ID, req *agent.Request) (*agent.Response, error) {
	if t.closed.Load() {
		return nil, fmt.Errorf("coap: %s: %w", target, agent.ErrClosed)
	}
	secure := target.Scheme == "coaps"
	switch {
	case target.Scheme != "" && target.Scheme != "coap" && !secure:
		return nil, fmt.Errorf("coap: identifier %s: scheme %q is not served by the CoAP transport", target, target.Scheme)
	case !secure && !t.opts.Insecure:
		return nil, fmt.Errorf("coap: %s: %w; plain CoAP is for a lab only and must be allowed explicitly (--insecure-coap)", target, ErrInsecure)
	}
	t.requests.Add(1)
	req.V = agent.Version
	req.ID = t.prefix + strconv.FormatUint(t.seq.Add(1), 36)
	req.Ident = target.String()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.opts.Timeout)
		defer cancel()
	}
	var resp *agent.Response
	var err error
	if secure {
		resp, err = t.secureExchange(ctx, target, req)
	} else {
		resp, err = t.exchange(ctx, target, req)
	}
	if err != nil {
		if errors.Is(err, agent.ErrTimeout) {
			t.timeouts.Add(1)
		} else {
			t.failures.Add(1)
		}
		return nil, err
	}
	return resp, nil
}

func (t *Transport) exchange(ctx context.Context, target identifiers.ID, req *agent.Request) (*agent.Response, error) {
	addr, err := t.resolve(target)
	if err != nil {
		return nil, fmt.Errorf("coap: %s: %w", target, err)
	}
	p, done := t.use(addr)
	defer done()
	fr, err := requestFor(target, req)
	if err != nil {
		return nil, err
	}
	if len(fr.body) <= fastMaxBody {
		a, err := t.fastExchange(ctx, p, &fr)
		if err != nil {
			return nil, t.exchangeError(ctx, target, err)
		}
		if !a.block {
			if a.code == codes.Unauthorized && len(a.payload) == 0 {
				return nil, fmt.Errorf("coap: %s answered 4.01 Unauthorized: the device requires DTLS: %w", target, ErrInsecure)
			}
			if a.cf >= 0 && a.cf != int(message.AppCBOR) {
				return nil, fmt.Errorf("coap: %s answered %v with content format %v: %w", req.Ident, a.code, a.cf, agent.ErrMalformed)
			}
			return checkAnswer(a.code, a.payload, req)
		}
		// The answer is larger than a block: ask again through go-coap,
		// which fetches it block by block. A GET is safe to repeat and a
		// PUT idempotent (docs/spec/agent-coap.md).
	}
	return t.blockwiseExchange(ctx, target, p, &fr, req)
}

// requestFor is the CoAP request that carries req to target: the method
// and resource the identifier chooses, the request in Uri-Query options for
// a GET, encoded as the payload otherwise.
func requestFor(target identifiers.ID, req *agent.Request) (fastRequest, error) {
	rt := routeFor(target)
	fr := fastRequest{code: rt.method, path: rt.path}
	var err error
	if rt.method == codes.GET {
		if fr.query, err = encodeQuery(req); err != nil {
			return fr, fmt.Errorf("coap: %s: %w", target, err)
		}
		return fr, nil
	}
	if fr.body, err = agent.EncodeRequest(req); err != nil {
		return fr, fmt.Errorf("coap: %s: encode request: %w", target, err)
	}
	if len(fr.body) > agent.MaxMessageBytes {
		return fr, fmt.Errorf("coap: %s: request of %d bytes exceeds %d", target, len(fr.body), agent.MaxMessageBytes)
	}
	return fr, nil
}

// blockwiseExchange carries r through go-coap, which transfers what does not
// fit one block blockwise (RFC 7959).
func (t *Transport) blockwiseExchange(ctx context.Context, target identifiers.ID, p *peer, r *fastRequest, req *agent.Request) (*agent.Response, error) {
	t.blockwise.Add(1)
	if err := p.acquire(ctx, t.done); err != nil {
		return nil, t.exchangeError(ctx, target, err)
	}
	defer p.release()
	cc, err := t.conn2(p)
	if err != nil {
		return nil, fmt.Errorf("coap: %s: %w", target, err)
	}
	m, err := coapDo(ctx, cc, r)
	if err != nil {
		return nil, t.exchangeError(ctx, target, err)
	}
	defer cc.ReleaseMessage(m)
	return decodeAnswer(m, req)
}

// coapDo sends r on go-coap's connection cc and waits for the answer, which
// go-coap transfers blockwise when it is over one block.
func coapDo(ctx context.Context, cc *udpclient.Conn, r *fastRequest) (*pool.Message, error) {
	switch r.code {
	case codes.GET:
		opts := make([]message.Option, len(r.query))
		for i, s := range r.query {
			opts[i] = message.Option{ID: message.URIQuery, Value: []byte(s)}
		}
		return cc.Get(ctx, r.path, opts...)
	case codes.PUT:
		return cc.Put(ctx, r.path, message.AppCBOR, bytes.NewReader(r.body))
	}
	return cc.Post(ctx, r.path, message.AppCBOR, bytes.NewReader(r.body))
}

// conn2 returns the peer's go-coap connection, opening it on first use or
// after go-coap closed it for inactivity.
func (t *Transport) conn2(p *peer) (*udpclient.Conn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cc != nil && p.cc.Context().Err() == nil {
		return p.cc, nil
	}
	cc, err := t.srv.NewConn(net.UDPAddrFromAddrPort(p.addr))
	if err != nil {
		if t.closed.Load() {
			return nil, agent.ErrClosed
		}
		return nil, fmt.Errorf("open blockwise exchange with %v: %w", p.addr, err)
	}
	p.cc = cc
	return cc, nil
}

// exchangeError maps what went wrong to the agent's errors.
func (t *Transport) exchangeError(ctx context.Context, target identifiers.ID, err error) error {
	switch {
	case t.closed.Load() || errors.Is(err, agent.ErrClosed):
		return fmt.Errorf("coap: %s: %w", target, agent.ErrClosed)
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("coap: %s: %w", target, agent.ErrTimeout)
	case ctx.Err() != nil:
		return fmt.Errorf("coap: %s: %w", target, ctx.Err())
	case isUnreachable(err) || errors.Is(err, errReset) || errors.Is(err, errNoAck):
		return fmt.Errorf("coap: %s: %w: %v", target, agent.ErrUnreachable, err)
	}
	return fmt.Errorf("coap: %s: %w", target, err)
}

// isUnreachable reports whether err is the network saying there is no one
// there: a refused or unroutable send.
func isUnreachable(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EADDRNOTAVAIL)
}

// decodeAnswer turns a CoAP answer into the device's Response.
func decodeAnswer(m *pool.Message, req *agent.Request) (*agent.Response, error) {
	code := m.Code()
	if cf, err := m.ContentFormat(); err == nil && cf != message.AppCBOR {
		return nil, fmt.Errorf("coap: %s answered %v with content format %v: %w", req.Ident, code, cf, agent.ErrMalformed)
	}
	if n, err := m.BodySize(); err == nil && n > agent.MaxMessageBytes {
		return nil, fmt.Errorf("coap: %s answered %d bytes, over %d: %w", req.Ident, n, agent.MaxMessageBytes, agent.ErrMalformed)
	}
	body, err := m.ReadBody()
	if err != nil {
		return nil, fmt.Errorf("coap: %s answered %v: read payload: %v: %w", req.Ident, code, err, agent.ErrMalformed)
	}
	return checkAnswer(code, body, req)
}

// checkAnswer decodes the payload of an answer with code and checks it answers req.
func checkAnswer(code codes.Code, body []byte, req *agent.Request) (*agent.Response, error) {
	resp, err := agent.DecodeResponse(body)
	if err != nil {
		return nil, fmt.Errorf("coap: %s answered %v: %w", req.Ident, code, err)
	}
	success := code>>5 == 2
	switch {
	case !success && resp.Err == nil:
		return nil, fmt.Errorf("coap: %s answered %v without an error in its Response: %w", req.Ident, code, agent.ErrMalformed)
	case resp.ID != req.ID && !(resp.ID == "" && resp.Err != nil):
		return nil, fmt.Errorf("coap: %s answered correlation id %q to request %q: %w", req.Ident, resp.ID, req.ID, agent.ErrMalformed)
	}
	return resp, nil
}

// hostPortOf is the address the transport sends to: the identifier's host and
// port (portOf).
func hostPortOf(id identifiers.ID) string {
	return net.JoinHostPort(id.Address, strconv.Itoa(portOf(id)))
}

// portOf is the identifier's port, or its scheme's default when it names
// none: DefaultSecurePort for coaps://, DefaultPort otherwise.
func portOf(id identifiers.ID) int {
	switch {
	case id.Port != 0:
		return id.Port
	case id.Scheme == "coaps":
		return DefaultSecurePort
	}
	return DefaultPort
}
