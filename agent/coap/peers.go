package coap

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/identifiers"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"
)

// peer is the transport's state for one device address: what RFC 7252 asks a
// client to keep per endpoint, and the go-coap connection of its blockwise
// transfers once it has had one.
type peer struct {
	addr netip.AddrPort
	slot chan struct{} // NSTART 1: held by the exchange in progress

	cur          atomic.Pointer[exchange] // the lean exchange waiting for an answer
	mid          atomic.Uint32            // last message id used
	lastSeparate atomic.Uint32            // message id + 1 of the last separate response acknowledged
	inflight     atomic.Int32             // Do calls using the peer (not evicted while > 0)
	lastUsed     atomic.Int64             // unix nanoseconds

	mu sync.Mutex
	cc *udpclient.Conn // blockwise transfers through go-coap; nil until needed
}

// acquire waits for the peer's one exchange slot.
func (p *peer) acquire(ctx context.Context, done <-chan struct{}) error {
	select {
	case p.slot <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-done:
		return agent.ErrClosed
	}
}

func (p *peer) release() { <-p.slot }

// closeConn closes the peer's go-coap connection, if any.
func (p *peer) closeConn() {
	p.mu.Lock()
	cc := p.cc
	p.cc = nil
	p.mu.Unlock()
	if cc != nil {
		_ = cc.Close()
	}
}

// resolve returns the address a target names: its IP literal, or its name
// resolved; the scheme's default port when it names none.
func (t *Transport) resolve(target identifiers.ID) (netip.AddrPort, error) {
	port := portOf(target)
	if port < 0 || port > 65535 {
		return netip.AddrPort{}, fmt.Errorf("%w: port %d", agent.ErrUnreachable, port)
	}
	if a, err := netip.ParseAddr(target.Address); err == nil {
		return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
	}
	hostPort := hostPortOf(target)
	now := time.Now()
	t.namesMu.Lock()
	e, ok := t.names[hostPort]
	t.namesMu.Unlock()
	if ok && now.Before(e.expires) {
		return e.addr, nil
	}
	ra, err := net.ResolveUDPAddr("udp", hostPort)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: resolve %s: %v", agent.ErrUnreachable, hostPort, err)
	}
	ap := ra.AddrPort()
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	t.namesMu.Lock()
	if len(t.names) >= t.opts.MaxPeers {
		clear(t.names) // rare: more names than peers; start over rather than scan
	}
	t.names[hostPort] = name{addr: ap, expires: now.Add(nameTTL)}
	t.namesMu.Unlock()
	return ap, nil
}

// nameTTL is how long the transport uses a name's address before it
// resolves the name again.
const nameTTL = 30 * time.Second

// name is a resolved device name.
type name struct {
	addr    netip.AddrPort
	expires time.Time
}

// peerAt returns the state of the peer at addr, or nil.
func (t *Transport) peerAt(addr netip.AddrPort) *peer {
	t.mu.RLock()
	p := t.peers[addr]
	t.mu.RUnlock()
	return p
}

// use returns the state of the peer at addr, creating it (and forgetting the
// least recently used idle peer when at MaxPeers). done must be called when
// the exchange ends.
func (t *Transport) use(addr netip.AddrPort) (p *peer, done func()) {
	t.mu.RLock()
	p = t.peers[addr]
	if p != nil {
		p.inflight.Add(1)
	}
	t.mu.RUnlock()
	if p == nil {
		t.mu.Lock()
		if p = t.peers[addr]; p == nil {
			t.evictLocked()
			p = &peer{addr: addr, slot: make(chan struct{}, 1)}
			p.mid.Store(rand.Uint32())
			t.peers[addr] = p
		}
		p.inflight.Add(1)
		t.mu.Unlock()
	}
	p.lastUsed.Store(time.Now().UnixNano())
	return p, func() {
		p.lastUsed.Store(time.Now().UnixNano())
		p.inflight.Add(-1)
	}
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
		victim netip.AddrPort
		oldest *peer
		seen   int
	)
	for k, p := range t.peers {
		if p.inflight.Load() == 0 && (oldest == nil || p.lastUsed.Load() < oldest.lastUsed.Load()) {
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
	go oldest.closeConn()
}

// sweep forgets the peers idle for longer than IdleTimeout.
func (t *Transport) sweep(now time.Time) {
	limit := now.Add(-t.opts.IdleTimeout).UnixNano()
	var idle []*peer
	t.mu.Lock()
	for k, p := range t.peers {
		if p.inflight.Load() == 0 && p.lastUsed.Load() < limit {
			delete(t.peers, k)
			idle = append(idle, p)
		}
	}
	t.mu.Unlock()
	for _, p := range idle {
		p.closeConn()
	}
}

// housekeep sweeps idle peers every second until the transport closes.
func (t *Transport) housekeep() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case now := <-tick.C:
			t.sweep(now)
			t.sweepSessions(now)
		case <-t.done:
			return
		}
	}
}
