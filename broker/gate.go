package broker

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/time/rate"
)

// Why a connection was closed before it could log in.
var (
	errConnectTooLarge = errors.New("CONNECT larger than MaxConnectSize")
	errNotConnect      = errors.New("first packet is not a CONNECT")
	errRateLimited     = errors.New("address exceeded its connection rate (ConnectRate)")
	errAddrLimited     = errors.New("address has MaxUnauthenticatedPerAddr connections not yet authenticated")
	errBrokerClosed    = errors.New("broker closing")
)

// maxTrackedAddrs bounds the per-address table (about 100 bytes an entry).
// Past it, after a sweep, new addresses are admitted untracked: a flood from
// that many addresses is beyond what per-address limits can stop, and the
// broker must not run out of memory tracking it.
const maxTrackedAddrs = 1 << 18

// gate admits connections before mochi sees them: the per-address rate and
// pending limits, then a complete CONNECT within ConnectTimeout and
// MaxConnectSize. mochi allocates whatever a packet's header announces and
// sets no deadline before CONNECT, so neither can be left to it.
type gate struct {
	b *Broker

	mu        sync.Mutex
	addrs     map[netip.Addr]*addrState
	lastSweep time.Time
	pending   map[*gatedConn]struct{} // until mochi has them, so Close can end them
	closed    bool
}

// addrState is what the gate knows of one address.
type addrState struct {
	limiter  *rate.Limiter // nil when ConnectRate is negative
	pending  int           // connections not yet authenticated
	lastSeen time.Time
}

func newGate(b *Broker) *gate {
	return &gate{b: b, addrs: make(map[netip.Addr]*addrState), pending: make(map[*gatedConn]struct{})}
}

// close ends the connections still waiting for their CONNECT and refuses
// new ones: the broker is closing.
func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	conns := g.pending
	g.pending = nil
	g.mu.Unlock()
	for gc := range conns {
		_ = gc.Close()
	}
}

// hold registers gc as waiting for its CONNECT, or reports that the broker is
// closing.
func (g *gate) hold(gc *gatedConn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.pending[gc] = struct{}{}
	return true
}

// unhold ends gc's wait and reports whether the broker is still open.
func (g *gate) unhold(gc *gatedConn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.pending, gc)
	return !g.closed
}

// limitKey returns the address per-address limits apply to for a remote
// address "ip:port": the IPv4 address or the IPv6 /64 (one site's prefix).
// tracked is false for an unparsable address, and for loopback unless
// LimitLoopback.
func (b *Broker) limitKey(remote string) (key netip.Addr, tracked bool) {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}, false
	}
	a := ap.Addr().Unmap()
	if a.IsLoopback() && !b.opts.LimitLoopback {
		return netip.Addr{}, false
	}
	if a.Is6() {
		p, _ := a.Prefix(64)
		a = p.Addr()
	}
	return a, true
}

// serve admits conn, reads its CONNECT and hands it to mochi; it returns when
// the connection ends.
func (g *gate) serve(listener string, conn net.Conn, establish listeners.EstablishFn) error {
	remote := conn.RemoteAddr().String()
	key, tracked := g.b.limitKey(remote)
	if err := g.admit(key, tracked); err != nil {
		_ = conn.Close()
		g.refused(listener, remote, err)
		return err
	}
	gc := &gatedConn{Conn: conn, release: func() { g.release(key, tracked) }}
	if !g.hold(gc) {
		_ = gc.Close()
		return errBrokerClosed
	}
	_ = conn.SetReadDeadline(time.Now().Add(g.b.opts.ConnectTimeout))
	pkt, err := readConnect(conn, g.b.opts.MaxConnectSize)
	open := g.unhold(gc)
	switch {
	case !open:
		_ = gc.Close()
		return errBrokerClosed
	case err != nil:
		_ = gc.Close()
		g.refused(listener, remote, err)
		return err
	}
	// The deadline stays until mochi has read the CONNECT (from pre) and
	// replaces it with the keepalive's.
	gc.pre = pkt
	return establish(listener, gc)
}

// admit applies the per-address limits and counts the connection as pending.
func (g *gate) admit(key netip.Addr, tracked bool) error {
	if tracked {
		now := g.b.opts.Now()
		g.mu.Lock()
		st := g.state(key, now)
		switch {
		case st == nil: // table full: admit untracked
			tracked = false
		case st.limiter != nil && !st.limiter.AllowN(now, 1):
			g.mu.Unlock()
			return errRateLimited
		case g.b.opts.MaxUnauthenticatedPerAddr > 0 && st.pending >= g.b.opts.MaxUnauthenticatedPerAddr:
			g.mu.Unlock()
			return errAddrLimited
		default:
			st.pending++
		}
		g.mu.Unlock()
	}
	g.b.stats.unauthenticated.Add(1)
	return nil
}

// state returns key's entry, creating it; nil when the table is full. The
// caller holds g.mu.
func (g *gate) state(key netip.Addr, now time.Time) *addrState {
	st := g.addrs[key]
	if st == nil {
		if len(g.addrs) >= maxTrackedAddrs || now.Sub(g.lastSweep) > time.Minute {
			g.sweep(now)
		}
		if len(g.addrs) >= maxTrackedAddrs {
			return nil
		}
		st = &addrState{}
		if r := g.b.opts.ConnectRate; r > 0 {
			st.limiter = rate.NewLimiter(rate.Limit(r), max(g.b.opts.ConnectBurst, 1))
		}
		g.addrs[key] = st
	}
	st.lastSeen = now
	return st
}

// sweep forgets addresses with nothing pending whose rate bucket has had
// time to refill: forgetting them changes nothing. The caller holds g.mu.
func (g *gate) sweep(now time.Time) {
	g.lastSweep = now
	refill := time.Duration(0)
	if r := g.b.opts.ConnectRate; r > 0 {
		refill = time.Duration(float64(max(g.b.opts.ConnectBurst, 1)) / r * float64(time.Second))
	}
	for k, st := range g.addrs {
		if st.pending == 0 && now.Sub(st.lastSeen) >= refill {
			delete(g.addrs, k)
		}
	}
}

// release ends a connection's pending state: it authenticated, or closed.
func (g *gate) release(key netip.Addr, tracked bool) {
	g.b.stats.unauthenticated.Add(-1)
	if !tracked {
		return
	}
	g.mu.Lock()
	if st := g.addrs[key]; st != nil && st.pending > 0 {
		st.pending--
	}
	g.mu.Unlock()
}

// refused counts and logs a connection closed before login.
func (g *gate) refused(listener, remote string, err error) {
	s := &g.b.stats
	var ne net.Error
	switch {
	case errors.Is(err, errRateLimited):
		s.rateLimited.Add(1)
	case errors.Is(err, errAddrLimited):
		s.addrLimited.Add(1)
	case errors.Is(err, errConnectTooLarge):
		s.tooLarge.Add(1)
	case errors.Is(err, errNotConnect):
		s.notConnect.Add(1)
	case errors.As(err, &ne) && ne.Timeout():
		s.timeouts.Add(1)
		g.b.log.Debug("mqtt connection closed: no CONNECT within ConnectTimeout", "listener", listener, "remote", remote)
		return
	default: // the client went away, or the TLS handshake failed
		g.b.log.Debug("mqtt connection ended before CONNECT", "listener", listener, "remote", remote, "error", err)
		return
	}
	g.b.warn("mqtt connection closed before login", "reason", err.Error(), "listener", listener, "remote", remote)
}

// readConnect reads the first packet from r, which must be a CONNECT of at
// most limit bytes, and returns it whole. It reads nothing past it.
func readConnect(r io.Reader, limit int) ([]byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:1]); err != nil {
		return nil, err
	}
	if hdr[0] != packets.Connect<<4 { // type 1, flags 0 [MQTT-2.2.2-2] [MQTT-3.1.0-1]
		return nil, fmt.Errorf("%w: first byte %#x", errNotConnect, hdr[0])
	}
	n, mult, i := 0, 1, 1
	for ; ; i++ {
		if i == len(hdr) {
			return nil, fmt.Errorf("%w: remaining length longer than 4 bytes", errNotConnect)
		}
		if _, err := io.ReadFull(r, hdr[i:i+1]); err != nil {
			return nil, err
		}
		n += int(hdr[i]&0x7f) * mult
		mult *= 128
		if hdr[i]&0x80 == 0 {
			break
		}
	}
	total := i + 1 + n
	if total > limit {
		return nil, fmt.Errorf("%w: %d bytes announced, limit %d", errConnectTooLarge, total, limit)
	}
	pkt := make([]byte, total)
	copy(pkt, hdr[:i+1])
	if _, err := io.ReadFull(r, pkt[i+1:]); err != nil {
		return nil, err
	}
	return pkt, nil
}

// gatedConn is the connection mochi gets: it first replays the CONNECT the
// gate read, and it ends the connection's pending state once, when the
// client authenticates or the connection closes.
type gatedConn struct {
	net.Conn
	pre     []byte // the CONNECT, until mochi has read it; only mochi's reader touches it
	once    sync.Once
	release func()
	refusal atomic.Pointer[refusal] // the CONNACK code to answer instead of mochi's
}

// refusal is a CONNACK code in both protocol versions.
type refusal struct{ v3, v5 packets.Code }

func (c *gatedConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		if len(c.pre) == 0 {
			c.pre = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

// authenticated ends the pending state.
func (c *gatedConn) authenticated() { c.once.Do(c.release) }

func (c *gatedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// gated returns cl's connection as the gate made it, if it is one.
func gated(conn net.Conn) (*gatedConn, bool) {
	gc, ok := conn.(*gatedConn)
	return gc, ok
}
