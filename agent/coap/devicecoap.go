package coap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/net/monitor/inactivity"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"
	udpserver "github.com/plgd-dev/go-coap/v3/udp/server"
)

// What the device's lean path leaves to go-coap: one go-coap connection per
// peer that needs one, on the device's socket, fed by the device's read loop
// exactly as go-coap's own UDP server feeds it (udp/server.Server.Serve), and
// swept by the Group's timer (retransmissions, expiries, idle peers).

// coapPeer is a peer's go-coap connection and what ends its goroutine.
type coapPeer struct {
	cc   *udpclient.Conn
	done context.CancelFunc
}

func (p *coapPeer) close() {
	_ = p.cc.Close()
	p.done()
}

// process hands datagram from a peer to the peer's go-coap connection.
func (s *Server) process(from netip.AddrPort, datagram []byte) {
	p, created := s.coapPeer(from)
	if p == nil {
		return // closed
	}
	err := p.cc.Process(nil, datagram)
	if err == nil {
		return
	}
	var malformed *udpclient.MalformedMessageError
	if !errors.As(err, &malformed) {
		s.coapError(fmt.Errorf("%v: %w", from, err))
		s.forget(from, p)
		return
	}
	s.coapError(fmt.Errorf("%v: dropped malformed datagram: %w", from, err))
	if created {
		s.forget(from, p) // a stranger's junk does not get a connection kept for it
	}
	// RFC 7252 section 4.2: a confirmable message that cannot be processed
	// is rejected with a Reset; an unknown version is silently ignored.
	if malformed.HasHeader && !malformed.InvalidVersion && malformed.Type == message.Confirmable && message.ValidateMID(malformed.MessageID) {
		mid := uint16(malformed.MessageID)
		s.write(from, []byte{1<<6 | byte(message.Reset)<<4, 0, byte(mid >> 8), byte(mid)})
	}
}

// coapPeer returns the go-coap connection of the peer at addr, opening it
// (created); nil once the server is closed.
func (s *Server) coapPeer(addr netip.AddrPort) (p *coapPeer, created bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		return nil, false
	}
	if p := s.conns[addr]; p != nil {
		if p.cc.Context().Err() == nil {
			return p, false
		}
		p.close()
	}
	done, cancel := context.WithCancel(context.Background())
	session := udpserver.NewSession(s.ctx, done, s.cconn, net.UDPAddrFromAddrPort(addr), uint32(s.maxDatagram), udpclient.DefaultMTU, false, s.coapError)
	cfg := udpclient.DefaultConfig
	cfg.Handler = s.handle
	cfg.Errors = s.coapError
	cfg.MessagePool = s.g.messages
	cfg.BlockwiseSZX = blockSZX
	cfg.ReceivedMessageQueueSize = 4
	bw := func(cc *udpclient.Conn) *blockwise.BlockWise[*udpclient.Conn] {
		return blockwise.New(cc, blockwiseTimeout, s.coapError, func(token message.Token) (*pool.Message, bool) {
			return cc.GetObservationRequest(token)
		})
	}
	idle := inactivity.New(deviceIdle, func(cc *udpclient.Conn) { _ = cc.Close() })
	p = &coapPeer{done: cancel, cc: udpclient.NewConnWithOpts(session, &cfg,
		udpclient.WithBlockWise(bw),
		udpclient.WithInactivityMonitor(udpclient.DeferInactivityWhileConfirmableMessagesPending(idle)),
		udpclient.WithRequestMonitor(s.monitor),
	)}
	s.conns[addr] = p
	return p, true
}

// forget closes the go-coap connection of addr if it is still p.
func (s *Server) forget(addr netip.AddrPort, p *coapPeer) {
	s.mu.Lock()
	if s.conns != nil && s.conns[addr] == p {
		delete(s.conns, addr)
	}
	s.mu.Unlock()
	p.close()
}

// housekeep is called by the Group's timer: it lets go-coap retransmit and
// expire what it keeps, and forgets the peers it closed. It returns false
// once the server is closed, which unregisters it.
func (s *Server) housekeep(now time.Time) bool {
	if s.closed.Load() {
		return false
	}
	s.mu.Lock()
	if len(s.conns) == 0 {
		s.mu.Unlock()
		return true
	}
	peers := make(map[netip.AddrPort]*coapPeer, len(s.conns))
	for k, p := range s.conns {
		peers[k] = p
	}
	s.mu.Unlock()
	for addr, p := range peers {
		if p.cc.Context().Err() != nil {
			s.forget(addr, p)
			continue
		}
		p.cc.CheckExpirations(now)
	}
	return true
}

// closeConns closes every go-coap connection; later datagrams find none.
func (s *Server) closeConns() {
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for _, p := range conns {
		p.close()
	}
}
