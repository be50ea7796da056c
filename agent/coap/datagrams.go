package coap

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	dtlsnet "github.com/pion/dtls/v3/pkg/net"
	"github.com/pion/transport/v5/deadline"
)

// datagrams splits one UDP socket into a net.PacketConn per peer, for
// pion/dtls: a device's DTLS sessions and the server's all share the one
// socket the identifier names (or the transport's one secure socket), as the
// plain paths do, instead of a socket per session. One goroutine reads the
// socket (run) and hands each datagram to its peer's conn.
//
// On a device (accept set) a datagram from a new peer opens a conn only when
// it is a DTLS ClientHello, and at most maxPeers are open at once; a plain
// CoAP datagram from a peer without a session goes to plain, which refuses
// it (docs/spec/agent-coap.md, "Security"). On the server, conns are opened
// by dial and strangers' datagrams are dropped.
type datagrams struct {
	conn     *net.UDPConn
	accept   bool
	maxPeers int
	plain    func(from netip.AddrPort, datagram []byte)
	backlog  chan *peerConn
	closed   chan struct{}
	once     sync.Once

	mu    sync.Mutex
	peers map[netip.AddrPort]*peerConn
}

var _ dtlsnet.PacketListener = (*datagrams)(nil)

// peerQueue is how many datagrams wait for a peer's reader before more are
// dropped, as a full socket buffer would.
const peerQueue = 64

func newDatagrams(conn *net.UDPConn, accept bool, maxPeers int, plain func(netip.AddrPort, []byte)) *datagrams {
	return &datagrams{conn: conn, accept: accept, maxPeers: maxPeers, plain: plain,
		backlog: make(chan *peerConn, 16), closed: make(chan struct{}), peers: make(map[netip.AddrPort]*peerConn)}
}

// run reads the socket until it is closed.
func (d *datagrams) run(maxDatagram int) {
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := d.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			select {
			case <-d.closed:
				return
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			_ = d.Close()
			return
		}
		d.deliver(from, buf[:n])
	}
}

func (d *datagrams) deliver(from netip.AddrPort, b []byte) {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	d.mu.Lock()
	p := d.peers[from]
	var stale *peerConn
	if p != nil && d.accept && isInitialHello(b) && !bytes.Equal(p.hello[:], helloRandom(b)) {
		// The peer starts over (it lost its session, or gave up on a
		// handshake): a new session, as RFC 6347 section 4.2.8 allows. The
		// same hello again is a retransmission, for the session under way.
		stale, p = p, nil
		delete(d.peers, from)
	}
	if p == nil && d.accept && isClientHello(b) && len(d.peers) < d.maxPeers {
		p = d.open(from)
		copy(p.hello[:], helloRandom(b))
		select {
		case d.backlog <- p:
		default: // nobody accepting: drop the hello, forget the peer
			delete(d.peers, from)
			p = nil
		}
	}
	d.mu.Unlock()
	if stale != nil {
		stale.shut()
	}
	if p == nil {
		if d.plain != nil && isCoAPRequest(b) {
			d.plain(from, b)
		}
		return
	}
	p.heard.Store(true)
	select {
	case p.in <- append([]byte(nil), b...):
	default: // the peer's queue is full: dropped, as UDP would
	}
}

// open makes the conn of the peer at addr; d.mu is held.
func (d *datagrams) open(addr netip.AddrPort) *peerConn {
	p := &peerConn{d: d, addr: addr, in: make(chan []byte, peerQueue), read: deadline.New(), closed: make(chan struct{})}
	d.peers[addr] = p
	return p
}

// dial returns a new conn to addr, replacing the one it had.
func (d *datagrams) dial(addr netip.AddrPort) *peerConn {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	d.mu.Lock()
	old := d.peers[addr]
	p := d.open(addr)
	d.mu.Unlock()
	if old != nil {
		old.shut()
	}
	return p
}

// Accept returns the conn of the next peer that said hello.
func (d *datagrams) Accept() (net.PacketConn, net.Addr, error) {
	select {
	case p := <-d.backlog:
		return p, net.UDPAddrFromAddrPort(p.addr), nil
	case <-d.closed:
		return nil, nil, net.ErrClosed
	}
}

// Close closes the socket and every peer's conn.
func (d *datagrams) Close() error {
	var err error
	d.once.Do(func() {
		close(d.closed)
		err = d.conn.Close()
		d.mu.Lock()
		peers := d.peers
		d.peers = map[netip.AddrPort]*peerConn{}
		d.mu.Unlock()
		for _, p := range peers {
			p.shut()
		}
	})
	return err
}

// Addr is the socket's local address.
func (d *datagrams) Addr() net.Addr { return d.conn.LocalAddr() }

// peerCount is the number of peers with a conn.
func (d *datagrams) peerCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.peers)
}

// peerConn is one peer's share of the socket.
type peerConn struct {
	d      *datagrams
	addr   netip.AddrPort
	in     chan []byte
	heard  atomic.Bool // a datagram came from the peer
	hello  [32]byte    // the random of the ClientHello that opened the conn (device side)
	read   *deadline.Deadline
	closed chan struct{}
	once   sync.Once
}

var _ net.PacketConn = (*peerConn)(nil)

func (p *peerConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case m := <-p.in:
		return copy(b, m), net.UDPAddrFromAddrPort(p.addr), nil
	case <-p.read.Done():
		return 0, nil, os.ErrDeadlineExceeded
	case <-p.closed:
		return 0, nil, net.ErrClosed
	}
}

func (p *peerConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	select {
	case <-p.closed:
		return 0, net.ErrClosed
	default:
	}
	return p.d.conn.WriteToUDPAddrPort(b, p.addr)
}

// Close forgets the peer: its later datagrams are a stranger's.
func (p *peerConn) Close() error {
	p.d.mu.Lock()
	if p.d.peers[p.addr] == p {
		delete(p.d.peers, p.addr)
	}
	p.d.mu.Unlock()
	p.shut()
	return nil
}

func (p *peerConn) shut() { p.once.Do(func() { close(p.closed) }) }

func (p *peerConn) LocalAddr() net.Addr { return p.d.conn.LocalAddr() }

func (p *peerConn) SetDeadline(t time.Time) error {
	p.read.Set(t)
	return nil
}

func (p *peerConn) SetReadDeadline(t time.Time) error {
	p.read.Set(t)
	return nil
}

// SetWriteDeadline does nothing: a write to a UDP socket does not wait.
func (p *peerConn) SetWriteDeadline(time.Time) error { return nil }

// isClientHello reports whether b starts with a DTLS handshake record
// carrying a ClientHello (RFC 6347 section 4.1: a 13-byte record header,
// then the handshake message type, 1).
func isClientHello(b []byte) bool {
	return len(b) > 13 && b[0] == 22 && b[1] == 0xfe && b[13] == 1
}

// isInitialHello reports whether b is a ClientHello in epoch 0 with message
// sequence 0: the first of a new handshake (the one that answers a
// HelloVerifyRequest has sequence 1).
func isInitialHello(b []byte) bool {
	return isClientHello(b) && len(b) > 18 && b[3] == 0 && b[4] == 0 && b[17] == 0 && b[18] == 0
}

// helloRandom is the client random of a ClientHello (after the record
// header, the handshake header and the 2-byte version), or nil.
func helloRandom(b []byte) []byte {
	const at = 13 + 12 + 2
	if !isClientHello(b) || len(b) < at+32 {
		return nil
	}
	return b[at : at+32]
}

// isCoAPRequest reports whether b looks like a CoAP message (version 1) of
// the request or empty class: a DTLS record starts with a content type of
// 20 to 25, never with version bits 01.
func isCoAPRequest(b []byte) bool {
	return len(b) >= 4 && b[0]>>6 == 1 && b[1]>>5 == 0
}
