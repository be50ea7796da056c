package devicesim

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/fleetvault/fleetvault/agent/coap"
)

// coapLink is one CoAP device's endpoint: a UDP port of its own, served by
// agent/coap's device server. The port is bound when the fleet is made and
// kept across reboots, so the device's identifier never changes.
type coapLink struct {
	f    *Fleet
	d    *Device
	addr *net.UDPAddr

	mu             sync.Mutex
	conn           *net.UDPConn // bound, not yet served (offline, late, dropping devices)
	srv            *coap.Server
	answeredBefore uint64 // by servers closed by reboots
	serving        bool
	closed         bool
}

var _ link = (*coapLink)(nil)

func newCoAPLink(f *Fleet, d *Device) (*coapLink, error) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(f.opts.CoAPHost)})
	if err != nil {
		return nil, fmt.Errorf("devicesim: CoAP device %s: listen on %s: %w", d.info.ID, f.opts.CoAPHost, err)
	}
	l := &coapLink{f: f, d: d, conn: conn, addr: conn.LocalAddr().(*net.UDPAddr)}
	d.info.Identifier.Address = l.addr.IP.String()
	d.info.Identifier.Port = l.addr.Port
	hostPort := net.JoinHostPort(l.addr.IP.String(), strconv.Itoa(l.addr.Port))
	d.h = d.handler([]string{hostPort}, quietLogger)
	d.inline = true
	d.fleet = f
	d.onReboot = l.reboot
	return l, nil
}

// start serves the device; a device with the drop fault keeps its port bound
// and never reads it, so requests go unanswered.
func (l *coapLink) start() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.serving || l.conn == nil {
		return
	}
	if l.d.info.Faults.Drop { // up, but deaf: the socket is never read
		l.serving = true
		l.f.online.Add(1)
		return
	}
	if key := l.d.info.CoAPKey; key != nil {
		srv, err := coap.NewSecureServer(l.conn, l.d.h, key, coap.ServerOptions{Group: l.f.group})
		if err != nil {
			l.f.connectErrors.Add(1)
			l.f.log.Warn("devicesim: CoAP device cannot serve DTLS", "device", l.d.info.ID, "err", err)
			return
		}
		l.srv = srv
	} else {
		l.srv = coap.NewServer(l.conn, l.d.h, coap.ServerOptions{Group: l.f.group})
	}
	l.conn, l.serving = nil, true
	l.f.online.Add(1)
	l.f.connects.Add(1)
	srv := l.srv
	l.f.wg.Add(1)
	go func() {
		defer l.f.wg.Done()
		if err := srv.Serve(l.f.ctx); err != nil {
			l.f.log.Warn("devicesim: CoAP device stopped", "device", l.d.info.ID, "err", err)
		}
	}()
}

// reboot takes the device off the network at once (its answer is never
// sent) and brings it back on the same port after its down time.
func (l *coapLink) reboot() {
	l.f.reboots.Add(1)
	l.mu.Lock()
	srv := l.srv
	wasServing := l.serving
	l.srv, l.serving = nil, false
	l.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
		st := srv.Stats()
		l.mu.Lock()
		l.answeredBefore += st.Answered + st.Refused
		l.mu.Unlock()
	}
	if wasServing {
		l.f.online.Add(-1)
	}
	l.f.waiting.Add(1)
	time.AfterFunc(l.d.rebootDown(), func() {
		l.f.waiting.Add(-1)
		l.rebind(0)
	})
}

func (l *coapLink) rebind(attempt int) {
	conn, err := net.ListenUDP("udp", l.addr)
	if err != nil {
		if attempt < 50 && l.f.ctx.Err() == nil {
			time.AfterFunc(100*time.Millisecond, func() { l.rebind(attempt + 1) })
			return
		}
		l.f.connectErrors.Add(1)
		l.f.log.Warn("devicesim: CoAP device cannot come back after its reboot", "device", l.d.info.ID, "err", err)
		return
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		conn.Close()
		return
	}
	l.conn = conn
	l.mu.Unlock()
	l.start()
}

func (l *coapLink) close() {
	l.mu.Lock()
	l.closed = true
	srv, conn, serving := l.srv, l.conn, l.serving
	l.srv, l.conn, l.serving = nil, nil, false
	l.mu.Unlock()
	if srv != nil {
		if err := srv.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			l.f.log.Debug("devicesim: close CoAP device", "device", l.d.info.ID, "err", err)
		}
	}
	if serving {
		l.f.online.Add(-1)
	}
	if conn != nil {
		conn.Close()
	}
}

// answered counts the answers the device's servers sent.
func (l *coapLink) answered() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.answeredBefore
	if l.srv != nil {
		st := l.srv.Stats()
		n += st.Answered + st.Refused
	}
	return n
}
