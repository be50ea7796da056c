package coap

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
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
	DefaultMaxPeers      = 16384
	DefaultIdleTimeout   = 30 * time.Second
	DefaultAckTimeout    = 2 * time.Second // RFC 7252 ACK_TIMEOUT
	DefaultMaxRetransmit = 4               // RFC 7252 MAX_RETRANSMIT
	DefaultTimeout       = 30 * time.Second
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
}

// TransportStats counts the transport's exchanges.
type TransportStats struct {
	Requests  uint64 // exchanges started
	Timeouts  uint64 // ended with ErrTimeout
	Failures  uint64 // ended with another error (unreachable, malformed answer)
	Peers     int    // devices with exchange state now
	Evictions uint64 // peers forgotten to stay under MaxPeers
	Dropped   uint64 // blocks dropped past the message limit
	Malformed uint64 // datagrams or exchanges the CoAP layer failed on
}

// Transport is the server side of the protocol over CoAP. One UDP socket
// carries the exchanges with every device: go-coap's UDP server demultiplexes
// answers by peer address, and each peer's exchange state (message ids,
// tokens, blockwise transfers) lives only while the peer is in use.
type Transport struct {
	srv    *udpserver.Server
	conn   *net.UDPConn
	log    *slog.Logger
	opts   TransportOptions
	prefix string
	seq    atomic.Uint64
	served chan error
	stop   chan struct{} // stops the housekeeping timer
	closed atomic.Bool

	mu    sync.Mutex
	peers map[string]*peer // by host:port as the identifier gives it

	requests, timeouts, failures, evictions, dropped, malformed atomic.Uint64
}

// peer is one device's exchange state.
type peer struct {
	cc       *udpclient.Conn
	inflight int
	lastUsed time.Time
}

var _ agent.Transport = (*Transport)(nil)

// NewTransport binds the transport's socket and starts reading it.
func NewTransport(opts TransportOptions) (*Transport, error) {
	opts = withDefaults(opts)
	la, err := net.ResolveUDPAddr("udp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("coap: transport: listen %s: %w", opts.Listen, err)
	}
	conn, err := net.ListenUDP("udp", la)
	if err != nil {
		return nil, fmt.Errorf("coap: transport: listen %s: %w", opts.Listen, err)
	}
	// Answers from thousands of devices arrive on this one socket: a deep
	// receive buffer keeps bursts from being dropped (and retransmitted 2 s
	// later). The kernel caps it at net.core.rmem_max.
	_ = conn.SetReadBuffer(socketBuffer)
	_ = conn.SetWriteBuffer(socketBuffer)
	var id [6]byte
	_, _ = rand.Read(id[:])
	t := &Transport{
		conn: conn, log: opts.Logger, opts: opts, prefix: hex.EncodeToString(id[:]) + "-",
		served: make(chan error, 1), stop: make(chan struct{}), peers: make(map[string]*peer),
	}
	// go-coap calls the periodic runner once Serve has taken the socket: that
	// is when NewConn starts to work.
	started := make(chan struct{})
	ticker := periodic.New(t.stop, time.Second)
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
		options.WithMessagePool(pool.New(4096, 2048)),
	)
	go func() { t.served <- t.srv.Serve(coapnet.NewUDPConn("udp", conn)) }()
	select {
	case <-started:
	case err := <-t.served:
		close(t.stop)
		_ = conn.Close()
		return nil, fmt.Errorf("coap: transport: serve %s: %w", conn.LocalAddr(), err)
	}
	return t, nil
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
	return o
}

// Addr returns the local address of the transport's socket.
func (t *Transport) Addr() net.Addr { return t.conn.LocalAddr() }

// Stats returns the transport's counters.
func (t *Transport) Stats() TransportStats {
	t.mu.Lock()
	n := len(t.peers)
	t.mu.Unlock()
	return TransportStats{
		Requests: t.requests.Load(), Timeouts: t.timeouts.Load(), Failures: t.failures.Load(), Peers: n,
		Evictions: t.evictions.Load(), Dropped: t.dropped.Load(), Malformed: t.malformed.Load(),
	}
}

// Close stops the transport; outstanding exchanges end with ErrClosed.
func (t *Transport) Close() error {
	if t.closed.Swap(true) {
		return nil
	}
	t.srv.Stop()
	_ = t.conn.Close()
	<-t.served
	close(t.stop)
	t.mu.Lock()
	t.peers = make(map[string]*peer)
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
	if target.Scheme != "" && target.Scheme != "coap" {
		return nil, fmt.Errorf("coap: identifier %s: scheme %q is not served by the CoAP transport", target, target.Scheme)
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
	resp, err := t.exchange(ctx, target, req)
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
	rt := routeFor(target)
	hostPort := hostPortOf(target)
	cc, release, err := t.peer(hostPort)
	if err != nil {
		return nil, fmt.Errorf("coap: %s: %w", target, err)
	}
	defer release()

	var m *pool.Message
	if rt.method == codes.GET {
		q, qerr := encodeQuery(req)
		if qerr != nil {
			return nil, fmt.Errorf("coap: %s: %w", target, qerr)
		}
		opts := make([]message.Option, len(q))
		for i, s := range q {
			opts[i] = message.Option{ID: message.URIQuery, Value: []byte(s)}
		}
		m, err = cc.Get(ctx, rt.path, opts...)
	} else {
		body, eerr := agent.EncodeRequest(req)
		if eerr != nil {
			return nil, fmt.Errorf("coap: %s: encode request: %w", target, eerr)
		}
		if len(body) > agent.MaxMessageBytes {
			return nil, fmt.Errorf("coap: %s: request of %d bytes exceeds %d", target, len(body), agent.MaxMessageBytes)
		}
		if rt.method == codes.PUT {
			m, err = cc.Put(ctx, rt.path, message.AppCBOR, bytes.NewReader(body))
		} else {
			m, err = cc.Post(ctx, rt.path, message.AppCBOR, bytes.NewReader(body))
		}
	}
	if err != nil {
		return nil, t.exchangeError(ctx, target, err)
	}
	defer cc.ReleaseMessage(m)
	return decodeAnswer(m, req)
}

// exchangeError maps what went wrong to the agent's errors.
func (t *Transport) exchangeError(ctx context.Context, target identifiers.ID, err error) error {
	switch {
	case t.closed.Load():
		return fmt.Errorf("coap: %s: %w", target, agent.ErrClosed)
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("coap: %s: %w", target, agent.ErrTimeout)
	case ctx.Err() != nil:
		return fmt.Errorf("coap: %s: %w", target, ctx.Err())
	case isUnreachable(err):
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
// port, DefaultPort when it names none.
func hostPortOf(id identifiers.ID) string {
	port := id.Port
	if port == 0 {
		port = DefaultPort
	}
	return net.JoinHostPort(id.Address, strconv.Itoa(port))
}

// peer returns the exchange state for hostPort, creating it (and forgetting
// the least recently used idle peer when over MaxPeers). release must be
// called when the exchange ends.
func (t *Transport) peer(hostPort string) (*udpclient.Conn, func(), error) {
	t.mu.Lock()
	p := t.peers[hostPort]
	if p != nil && p.cc.Context().Err() != nil {
		delete(t.peers, hostPort) // closed for inactivity
		p = nil
	}
	if p == nil {
		t.mu.Unlock()
		cc, err := t.dial(hostPort)
		if err != nil {
			return nil, nil, err
		}
		t.mu.Lock()
		if q := t.peers[hostPort]; q != nil && q.cc == cc {
			p = q
		} else {
			t.evictLocked()
			p = &peer{cc: cc}
			t.peers[hostPort] = p
		}
	}
	p.inflight++
	p.lastUsed = time.Now()
	t.mu.Unlock()
	return p.cc, func() {
		t.mu.Lock()
		p.inflight--
		t.mu.Unlock()
	}, nil
}

func (t *Transport) dial(hostPort string) (*udpclient.Conn, error) {
	ra, err := net.ResolveUDPAddr("udp", hostPort)
	if err != nil {
		return nil, fmt.Errorf("%w: resolve %s: %v", agent.ErrUnreachable, hostPort, err)
	}
	cc, err := t.srv.NewConn(ra)
	if err != nil {
		if t.closed.Load() {
			return nil, agent.ErrClosed
		}
		return nil, fmt.Errorf("open exchange with %s: %w", hostPort, err)
	}
	return cc, nil
}

// evictLocked forgets one idle peer when the transport is at MaxPeers: the
// least recently used of a few sampled (map order is random), as caches that
// must not scan everything do.
func (t *Transport) evictLocked() {
	if len(t.peers) < t.opts.MaxPeers {
		return
	}
	const sample = 16
	var (
		victim string
		oldest *peer
		seen   int
	)
	for k, p := range t.peers {
		if p.inflight == 0 && (oldest == nil || p.lastUsed.Before(oldest.lastUsed)) {
			victim, oldest = k, p
		}
		if seen++; seen >= sample && oldest != nil {
			break
		}
	}
	if oldest == nil {
		return // every peer is busy: go over the bound rather than fail
	}
	delete(t.peers, victim)
	t.evictions.Add(1)
	_ = oldest.cc.Close()
}
