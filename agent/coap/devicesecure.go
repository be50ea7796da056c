package coap

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/pion/dtls/v3"
	dtlsserver "github.com/plgd-dev/go-coap/v3/dtls/server"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	coapnet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/options"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"
)

// A device that requires DTLS (NewSecureServer) serves its resources through
// go-coap's DTLS server on pion/dtls, over its one socket (datagrams.go): the
// lean path of a plain device does not apply, since every datagram is a DTLS
// record to decrypt first. A plain CoAP request is answered 4.01 Unauthorized
// without a payload and never reaches the Handler.

// DefaultMaxSessions bounds the DTLS sessions a device keeps at once
// (handshakes under way included); a ClientHello beyond it is dropped.
const DefaultMaxSessions = 64

// dtlsOverhead is what DTLS adds to a CoAP datagram, with room to spare: a
// 13-byte record header, an 8-byte explicit nonce and a tag of up to 16.
const dtlsOverhead = 64

// secureEndpoint is a device's DTLS side.
type secureEndpoint struct {
	dg  *datagrams
	srv *dtlsserver.Server
	l   net.Listener // pion's, over dg
}

// NewSecureServer returns the device endpoint on conn, which it owns from
// now on, serving CoAP over DTLS 1.2 with the pre-shared key key; the PSK
// identity is the device's id (h.ID()). Plain CoAP requests are refused.
func NewSecureServer(conn *net.UDPConn, h *agent.Handler, key []byte, opts ServerOptions) (*Server, error) {
	if err := checkIdentity(h.ID()); err != nil {
		return nil, fmt.Errorf("coap: device %s: %w", h.ID(), err)
	}
	if err := CheckKey(key); err != nil {
		return nil, fmt.Errorf("coap: device %s: %w", h.ID(), err)
	}
	s := NewServer(conn, h, opts)
	maxSessions := opts.MaxSessions
	if maxSessions <= 0 {
		maxSessions = DefaultMaxSessions
	}
	dg := newDatagrams(conn, true, maxSessions, s.refusePlain)
	l, err := dtls.NewListenerWithOptions(dg, deviceDTLS(h.ID(), append([]byte(nil), key...))...)
	if err != nil {
		return nil, fmt.Errorf("coap: device %s: DTLS: %w", h.ID(), err)
	}
	srv := dtlsserver.New(
		options.WithContext(s.ctx),
		options.WithHandlerFunc(s.handle),
		options.WithErrors(s.coapError),
		options.WithMaxMessageSize(uint32(s.maxDatagram)),
		options.WithBlockwise(true, blockSZX, blockwiseTimeout),
		options.WithPeriodicRunner(s.g.runner),
		options.WithInactivityMonitor(deviceIdle, func(cc *udpclient.Conn) { _ = cc.Close() }),
		options.WithRequestMonitor(udpclient.RequestMonitorFunc(s.monitor)),
		options.WithMessagePool(s.g.messages),
		options.WithDTLSHandshakeTimeout(DefaultHandshakeTimeout),
	)
	s.secure = &secureEndpoint{dg: dg, srv: srv, l: l}
	return s, nil
}

// Secure reports whether the device requires DTLS.
func (s *Server) Secure() bool { return s.secure != nil }

// serveSecure runs the DTLS endpoint until the server is closed.
func (s *Server) serveSecure() error {
	read := make(chan struct{})
	go func() {
		defer close(read)
		s.secure.dg.run(s.maxDatagram + dtlsOverhead)
	}()
	err := s.secure.srv.Serve(acceptor{s.secure.l})
	_ = s.secure.dg.Close()
	<-read
	if s.closed.Load() {
		return nil
	}
	if err != nil {
		return fmt.Errorf("coap: device %s: serve DTLS: %w", s.h.ID(), err)
	}
	return nil
}

// closeSecure stops the DTLS endpoint and closes the socket.
func (s *Server) closeSecure() {
	s.secure.srv.Stop()
	_ = s.secure.dg.Close()
}

// refusePlain answers a plain CoAP message to a device that requires DTLS:
// a request gets 4.01 Unauthorized without a payload (no larger than the
// request, so no amplification), a confirmable empty message a Reset;
// anything else is dropped.
func (s *Server) refusePlain(from netip.AddrPort, b []byte) {
	s.insecure.Add(1)
	s.log.Debug("coap: refused plain CoAP: DTLS required", "device", s.h.ID(), "from", from)
	typ, tkl, code := message.Type((b[0]>>4)&3), int(b[0]&0x0f), b[1]
	if tkl > 8 || len(b) < 4+tkl {
		return
	}
	switch {
	case code == 0 && typ == message.Confirmable:
		s.write(from, []byte{1<<6 | byte(message.Reset)<<4, 0, b[2], b[3]})
	case code != 0 && (typ == message.Confirmable || typ == message.NonConfirmable):
		out := make([]byte, 4+tkl)
		out[0] = 1<<6 | byte(message.Acknowledgement)<<4 | byte(tkl)
		out[1] = byte(codes.Unauthorized)
		out[2], out[3] = b[2], b[3]
		if typ == message.NonConfirmable {
			out[0] = 1<<6 | byte(message.NonConfirmable)<<4 | byte(tkl)
			_, _ = rand.Read(out[2:4])
		}
		copy(out[4:], b[4:4+tkl])
		s.write(from, out)
	}
}

// acceptor gives pion's listener the AcceptWithContext go-coap's server
// calls; a closed listener ends Serve.
type acceptor struct{ net.Listener }

func (a acceptor) AcceptWithContext(ctx context.Context) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := a.Accept()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", coapnet.ErrListenerIsClosed, err)
	}
	return c, nil
}
