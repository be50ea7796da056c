package coap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/identifiers"
	"github.com/pion/dtls/v3"
	coapdtls "github.com/plgd-dev/go-coap/v3/dtls"
	"github.com/plgd-dev/go-coap/v3/options"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"
)

// The server's side of coaps:// (docs/spec/agent-coap.md, "Security"): one
// DTLS session per device, on the transport's secure socket (datagrams.go),
// opened with the device's pre-shared key on first use (the PSK identity is
// the device's id, which the caller names with agent.WithDevice) and closed
// after IdleTimeout. Exchanges run through go-coap's client over the
// session, blockwise when they need to.

// session is the DTLS session with the device at one address.
type session struct {
	mu     sync.Mutex // held while the handshake runs
	device string
	cc     *udpclient.Conn // nil until the handshake succeeds
}

// alive reports whether s has a session with device that go-coap has not closed.
func (s *session) alive(device string) bool {
	return s.cc != nil && s.device == device && s.cc.Context().Err() == nil
}

// secureExchange carries req to the coaps:// device target names.
func (t *Transport) secureExchange(ctx context.Context, target identifiers.ID, req *agent.Request) (*agent.Response, error) {
	device := agent.DeviceOf(ctx)
	if device == "" {
		return nil, fmt.Errorf("coap: %s: the device's id is needed for the DTLS handshake (agent.WithDevice): %w", target, ErrNoKey)
	}
	addr, err := t.resolve(target)
	if err != nil {
		return nil, fmt.Errorf("coap: %s: %w", target, err)
	}
	fr, err := requestFor(target, req)
	if err != nil {
		return nil, err
	}
	cc, err := t.session(ctx, addr, device)
	if err != nil {
		if errors.Is(err, ErrNoKey) || errors.Is(err, ErrHandshake) {
			return nil, fmt.Errorf("coap: %s (device %s): %w", target, device, err)
		}
		return nil, t.exchangeError(ctx, target, err)
	}
	m, err := coapDo(ctx, cc, &fr)
	if err != nil {
		// The device may have lost the session (a reboot) and drops what
		// it cannot decrypt: the next exchange shakes hands again.
		t.dropSession(addr, cc)
		return nil, t.exchangeError(ctx, target, err)
	}
	defer cc.ReleaseMessage(m)
	return decodeAnswer(m, req)
}

// session returns the DTLS session with device at addr, shaking hands when
// there is none (or it was closed, or the address now names another device).
func (t *Transport) session(ctx context.Context, addr netip.AddrPort, device string) (*udpclient.Conn, error) {
	t.sessMu.Lock()
	s := t.sessions[addr]
	if s == nil {
		if len(t.sessions) >= t.opts.MaxPeers {
			t.evictSessionLocked()
		}
		s = &session{}
		t.sessions[addr] = s
	}
	t.sessMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.alive(device) {
		return s.cc, nil
	}
	if s.cc != nil {
		_ = s.cc.Close()
		s.cc = nil
	}
	cc, err := t.handshake(ctx, addr, device)
	if err != nil {
		return nil, err
	}
	s.device, s.cc = device, cc
	return cc, nil
}

// handshake opens a DTLS session with device at addr.
func (t *Transport) handshake(ctx context.Context, addr netip.AddrPort, device string) (*udpclient.Conn, error) {
	if t.opts.Keys == nil {
		return nil, fmt.Errorf("the transport has no key store: %w", ErrNoKey)
	}
	key, err := t.opts.Keys(ctx, device)
	if err != nil {
		return nil, err
	}
	if err := CheckKey(key); err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrNoKey)
	}
	// A fatal alert can be the device's answer to a stray datagram of an
	// abandoned handshake from the same address (a stale cookie): one more
	// try tells that from a real refusal.
	for attempt := 0; ; attempt++ {
		cc, err := t.handshakeOnce(ctx, addr, device, key)
		var alert *alertError
		if err == nil || !errors.As(err, &alert) || attempt > 0 {
			return cc, err
		}
	}
}

// alertError is a handshake the device ended with an alert.
type alertError struct{ err error }

func (e *alertError) Error() string { return e.err.Error() }

// handshakeOnce makes one DTLS handshake with device at addr.
func (t *Transport) handshakeOnce(ctx context.Context, addr netip.AddrPort, device string, key []byte) (*udpclient.Conn, error) {
	t.handshakes.Add(1)
	pc := t.sdg.dial(addr)
	conn, err := dtls.ClientWithOptions(pc, net.UDPAddrFromAddrPort(addr), serverDTLS(device, key)...)
	if err != nil {
		_ = pc.Close()
		return nil, fmt.Errorf("%w: %v", ErrHandshake, err)
	}
	hctx, cancel := context.WithTimeout(ctx, t.opts.HandshakeTimeout)
	defer cancel()
	if err := conn.HandshakeContext(hctx); err != nil {
		_ = conn.Close()
		t.handshakeFailures.Add(1)
		// A device drops a Finished it cannot decrypt (RFC 6347 section
		// 4.1.2.7), so a wrong key is silence after the device's hello.
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case hctx.Err() != nil && pc.heard.Load():
			return nil, fmt.Errorf("%w: the device answered the hello, then not the key exchange (a wrong key or identity?)", ErrHandshake)
		case hctx.Err() != nil:
			return nil, fmt.Errorf("%w: no answer to the DTLS handshake within %s", agent.ErrTimeout, t.opts.HandshakeTimeout)
		}
		return nil, fmt.Errorf("%w: %w", ErrHandshake, &alertError{err})
	}
	return coapdtls.Client(conn,
		options.WithErrors(t.coapError),
		options.WithMaxMessageSize(transportMaxDatagram),
		options.WithBlockwise(true, blockSZX, blockwiseTimeout),
		options.WithTransmission(1, t.opts.AckTimeout, uint32(t.opts.MaxRetransmit)),
		options.WithInactivityMonitor(t.opts.IdleTimeout, func(cc *udpclient.Conn) { _ = cc.Close() }),
		options.WithRequestMonitor(udpclient.RequestMonitorFunc(t.monitor)),
		options.WithPeriodicRunner(t.ticker),
		options.WithCloseSocket(), // closing the session closes the DTLS conn and forgets the peer
	), nil
}

// dropSession closes the session at addr if it is still cc.
func (t *Transport) dropSession(addr netip.AddrPort, cc *udpclient.Conn) {
	t.sessMu.Lock()
	s := t.sessions[addr]
	t.sessMu.Unlock()
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cc == cc {
		_ = s.cc.Close()
		s.cc = nil
	}
}

// evictSessionLocked closes one session to make room; t.sessMu is held.
func (t *Transport) evictSessionLocked() {
	for addr, s := range t.sessions {
		delete(t.sessions, addr)
		t.evictions.Add(1)
		go s.close()
		return
	}
}

func (s *session) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cc != nil {
		_ = s.cc.Close()
		s.cc = nil
	}
}

// sweepSessions forgets the sessions go-coap closed for inactivity.
func (t *Transport) sweepSessions(time.Time) {
	t.sessMu.Lock()
	defer t.sessMu.Unlock()
	for addr, s := range t.sessions {
		if !s.mu.TryLock() {
			continue // a handshake is under way
		}
		if s.cc == nil || s.cc.Context().Err() != nil {
			delete(t.sessions, addr)
		}
		s.mu.Unlock()
	}
}

// closeSessions closes every session and the secure socket.
func (t *Transport) closeSessions() {
	t.sessMu.Lock()
	sessions := t.sessions
	t.sessions = map[netip.AddrPort]*session{}
	t.sessMu.Unlock()
	for _, s := range sessions {
		s.close()
	}
	_ = t.sdg.Close()
}
