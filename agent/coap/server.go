package coap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	coapnet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/net/responsewriter"
	"github.com/plgd-dev/go-coap/v3/pkg/runner/periodic"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"
)

// DefaultMaxDatagram is the largest datagram a device reads: a 1024-byte block
// with its header and options fits with room to spare. Larger payloads travel
// blockwise (RFC 7959).
const DefaultMaxDatagram = 2048

// blockSZX is the block size both sides use: 1024 bytes.
const blockSZX = blockwise.SZX1024

// blockwiseTimeout is how long a half-received blockwise transfer is kept.
const blockwiseTimeout = 10 * time.Second

// deviceIdle is how long a device keeps the state of a peer it has not heard
// from (its message-id cache, half-finished transfers).
const deviceIdle = 30 * time.Second

// ServerOptions tune a device's CoAP endpoint. The zero value is usable.
type ServerOptions struct {
	Logger *slog.Logger
	// MaxDatagram is the largest datagram read; 0 means DefaultMaxDatagram.
	// Each server holds a read buffer of this size.
	MaxDatagram int
	// Group shares housekeeping among many servers in one process (a simulated
	// fleet). Nil gives the server a group of its own.
	Group *Group
	// MaxSessions bounds the DTLS sessions of a device that requires DTLS
	// (NewSecureServer); 0 means DefaultMaxSessions.
	MaxSessions int
}

// ServerStats counts what a device's endpoint answered and refused.
type ServerStats struct {
	Answered  uint64 // requests answered with a success code
	Refused   uint64 // requests answered with a refusal (4.xx, 5.xx) and a Response
	Dropped   uint64 // datagrams or blocks dropped: over a size limit
	Malformed uint64 // datagrams that were not CoAP, or failed in the CoAP layer
	Insecure  uint64 // plain CoAP messages refused by a device that requires DTLS
}

// Group is the housekeeping that many device servers share: one timer
// goroutine (expiring message-id caches and idle peers) and one message pool.
// A simulator serving thousands of devices makes one Group and passes it in
// ServerOptions. Close it after the servers.
type Group struct {
	stop     chan struct{}
	once     sync.Once
	runner   periodic.Func
	messages *pool.Pool
}

// NewGroup returns a Group whose timer ticks every second.
func NewGroup() *Group {
	stop := make(chan struct{})
	return &Group{stop: stop, runner: periodic.New(stop, time.Second), messages: pool.New(1024, 2048)}
}

// Close stops the group's timer.
func (g *Group) Close() { g.once.Do(func() { close(g.stop) }) }

// Server is one device's CoAP endpoint: it serves the resources of
// docs/spec/agent-coap.md on a UDP socket and answers through an agent.Handler.
type Server struct {
	h           *agent.Handler
	conn        *net.UDPConn
	cconn       *coapnet.UDPConn // conn as go-coap writes to it
	log         *slog.Logger
	g           *Group
	group       *Group // set when the server owns its group
	maxDatagram int
	ctx         context.Context // handlers run under it; ends on Close
	cancel      context.CancelFunc
	closed      atomic.Bool
	secure      *secureEndpoint // set by NewSecureServer

	mu    sync.Mutex
	conns map[netip.AddrPort]*coapPeer // go-coap connections (devicecoap.go); nil once closed

	answered, refused, dropped, malformed, insecure atomic.Uint64
}

// Listen binds addr ("127.0.0.1:5683", "[::1]:0") and returns the device's
// endpoint; call Serve to answer. h must answer to the address the server is
// reachable at (agent.HandlerOptions.Addresses); when binding port 0, bind
// with net.ListenUDP first, build the handler with the port, and use NewServer.
func Listen(addr string, h *agent.Handler, opts ServerOptions) (*Server, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("coap: listen %s: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("coap: listen %s: %w", addr, err)
	}
	return NewServer(conn, h, opts), nil
}

// NewServer returns the device endpoint on conn, which it owns from now on,
// serving plain CoAP: for a lab only (docs/spec/agent-coap.md, "Security");
// NewSecureServer serves CoAP over DTLS.
func NewServer(conn *net.UDPConn, h *agent.Handler, opts ServerOptions) *Server {
	s := &Server{h: h, conn: conn, cconn: coapnet.NewUDPConn("udp", conn), log: opts.Logger, g: opts.Group,
		maxDatagram: opts.MaxDatagram, conns: make(map[netip.AddrPort]*coapPeer)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.g == nil {
		s.g = NewGroup()
		s.group = s.g
	}
	if s.maxDatagram <= 0 {
		s.maxDatagram = DefaultMaxDatagram
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Addr returns the address the device listens at.
func (s *Server) Addr() net.Addr { return s.conn.LocalAddr() }

// Handler returns the handler the server answers with.
func (s *Server) Handler() *agent.Handler { return s.h }

// Stats returns the server's counters.
func (s *Server) Stats() ServerStats {
	return ServerStats{Answered: s.answered.Load(), Refused: s.refused.Load(), Dropped: s.dropped.Load(),
		Malformed: s.malformed.Load(), Insecure: s.insecure.Load()}
}

// Serve answers requests until ctx ends or Close is called; then it returns
// nil. Any other error is the socket's.
func (s *Server) Serve(ctx context.Context) error {
	if s.closed.Load() {
		return nil
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()
	if s.secure != nil {
		return s.serveSecure()
	}
	s.g.runner(s.housekeep)
	return s.readLoop()
}

// Close stops the server and closes its socket.
func (s *Server) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.cancel()
	if s.secure != nil {
		s.closeSecure()
	}
	err := s.conn.Close()
	s.closeConns()
	if s.group != nil {
		s.group.Close()
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("coap: close %s: %w", s.Addr(), err)
	}
	return nil
}

func (s *Server) coapError(err error) {
	s.malformed.Add(1)
	s.log.Debug("coap: device endpoint", "device", s.h.ID(), "err", err)
}

// monitor drops, before any reassembly, a block that would take a message
// past agent.MaxMessageBytes, so a stranger cannot make a device buffer
// without bound.
func (s *Server) monitor(_ *udpclient.Conn, m *pool.Message) (bool, error) {
	if overLimit(m) {
		s.dropped.Add(1)
		s.log.Debug("coap: dropped block past the message limit", "device", s.h.ID())
		return true, nil
	}
	return false, nil
}

// overLimit reports whether m is a block, or announces a size, beyond
// agent.MaxMessageBytes.
func overLimit(m *pool.Message) bool {
	for _, opt := range []message.OptionID{message.Block1, message.Block2} {
		v, err := m.GetOptionUint32(opt)
		if err != nil {
			continue
		}
		szx, num, _, err := blockwise.DecodeBlockOption(v)
		if err != nil {
			return true
		}
		if num*szx.Size() >= agent.MaxMessageBytes {
			return true
		}
	}
	for _, opt := range []message.OptionID{message.Size1, message.Size2} {
		if v, err := m.GetOptionUint32(opt); err == nil && v > agent.MaxMessageBytes {
			return true
		}
	}
	return false
}

// handle answers a request that go-coap reassembled (or that the lean path
// left to it).
func (s *Server) handle(w *responsewriter.ResponseWriter[*udpclient.Conn], r *pool.Message) {
	in := incoming{method: r.Code(), cf: -1}
	in.path, _ = r.Path()
	if cf, err := r.ContentFormat(); err == nil {
		in.cf = int(cf)
	}
	if in.method == codes.GET {
		in.queries, in.queryErr = r.Queries()
	} else if n, err := r.BodySize(); err == nil && n > agent.MaxMessageBytes {
		in.bodySize = n
	} else {
		in.body, in.bodyErr = r.ReadBody()
	}
	resp := s.serve(r.Context(), in)
	s.count(resp)
	code, b := s.encodeAnswer(r.Code(), resp)
	if err := w.SetResponse(code, message.AppCBOR, bytes.NewReader(b)); err != nil {
		s.coapError(fmt.Errorf("set response: %w", err))
	}
}

// incoming is what serve needs of a CoAP request, from the lean path or
// from go-coap.
type incoming struct {
	method   codes.Code
	path     string
	cf       int // content format; -1 when the request names none
	queries  []string
	queryErr error
	body     []byte
	bodySize int64 // set instead of body when the body is over the limit
	bodyErr  error
}

// serve turns one CoAP request into an agent.Request, hands it to the
// Handler and returns the answer, or a refusal of its own when the request
// cannot become an agent.Request.
func (s *Server) serve(ctx context.Context, in incoming) *agent.Response {
	path, method := in.path, in.method
	var (
		req *agent.Request
		bad *agent.Response
	)
	switch {
	case method == codes.GET && (path == PathTag || path == PathSettings || path == PathBoth):
		req, bad = s.fromQuery(in)
	case method == codes.PUT && path == PathSettings, method == codes.POST && path == PathRequest:
		req, bad = s.fromBody(in)
	case path == PathTag || path == PathSettings || path == PathBoth || path == PathRequest:
		return s.refusal("", agent.CodeUnsupported, fmt.Sprintf("%v is not served at %s", method, path))
	default:
		return s.refusal("", agent.CodeUnsupported, fmt.Sprintf("no resource %q", path))
	}
	if bad != nil {
		return bad
	}
	if path != PathRequest {
		if msg := checkRoute(req.Ident, method, path); msg != "" {
			return s.refusal(req.ID, agent.CodeBadRequest, msg)
		}
	}
	return s.h.Handle(ctx, req)
}

func (s *Server) fromQuery(in incoming) (*agent.Request, *agent.Response) {
	if in.queryErr != nil && !errors.Is(in.queryErr, message.ErrOptionNotFound) {
		return nil, s.refusal("", agent.CodeBadRequest, "read uri-query: "+in.queryErr.Error())
	}
	req, err := decodeQuery(in.queries)
	if err != nil {
		id := ""
		if req != nil {
			id = req.ID
		}
		return nil, s.refusal(id, agent.CodeBadRequest, err.Error())
	}
	return req, nil
}

func (s *Server) fromBody(in incoming) (*agent.Request, *agent.Response) {
	if in.cf >= 0 && in.cf != int(message.AppCBOR) {
		return nil, s.refusal("", agent.CodeBadRequest, fmt.Sprintf("content format %v; want %v (application/cbor)", message.MediaType(in.cf), message.AppCBOR))
	}
	if in.bodySize > agent.MaxMessageBytes || len(in.body) > agent.MaxMessageBytes {
		return nil, s.refusal("", agent.CodeTooLarge, fmt.Sprintf("request of %d bytes exceeds %d", max(in.bodySize, int64(len(in.body))), agent.MaxMessageBytes))
	}
	if in.bodyErr != nil {
		return nil, s.refusal("", agent.CodeBadRequest, "read payload: "+in.bodyErr.Error())
	}
	req, err := agent.DecodeRequest(in.body)
	if err != nil {
		return nil, s.refusal("", agent.CodeBadRequest, err.Error())
	}
	return req, nil
}

// refusal is the Response for a request the Handler never saw.
func (s *Server) refusal(id, code, msg string) *agent.Response {
	s.log.Debug("coap: refused request", "device", s.h.ID(), "id", id, "code", code, "msg", msg)
	return &agent.Response{ID: id, Device: s.h.ID(), Caps: agent.Capabilities(), Err: &agent.Error{Code: code, Message: msg}}
}
