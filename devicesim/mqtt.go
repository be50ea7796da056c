package devicesim

import (
	"errors"
	"sync"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/devicesim/leanmqtt"
)

// Reconnection backoff of an MQTT device whose connection failed or ended.
const (
	minBackoff = 200 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// mqttLink is one MQTT device's session with the broker: connect, answer,
// reboot, reconnect. It holds no goroutine of its own: the connection's reader
// runs the device, timers run the rest.
type mqttLink struct {
	f        *Fleet
	d        *Device
	resTopic string

	mu        sync.Mutex
	conn      *leanmqtt.Conn
	backoff   time.Duration
	rebooting bool
	closed    bool
}

var _ link = (*mqttLink)(nil)

func newMQTTLink(f *Fleet, d *Device) *mqttLink {
	return &mqttLink{f: f, d: d, resTopic: agent.ResponseTopic(d.info.ID)}
}

// start connects, retrying with backoff from a timer when it fails.
func (l *mqttLink) start() {
	if err := l.connect(); err != nil {
		l.retry(err)
	}
}

func (l *mqttLink) connect() error {
	f := l.f
	select {
	case f.dial <- struct{}{}:
	case <-f.ctx.Done():
		return f.ctx.Err()
	}
	defer func() { <-f.dial }()
	c, err := leanmqtt.Dial(f.ctx, leanmqtt.Options{
		Addr: f.addr, ClientID: l.d.info.ID, Username: l.d.info.ID, Password: l.d.info.Password,
		Version: f.opts.MQTTVersion, Keepalive: f.opts.Keepalive,
		Subscribe: []string{agent.RequestTopic(l.d.info.ID)},
		OnMessage: l.onMessage,
		OnClose:   l.onClose,
	})
	if err != nil {
		f.connectErrors.Add(1)
		return err
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		c.Close()
		return nil
	}
	if err := c.Err(); err != nil {
		// It ended before it was registered: onClose has already run and
		// left it alone, so retrying is ours.
		l.mu.Unlock()
		return err
	}
	l.conn, l.backoff = c, 0
	f.online.Add(1)
	l.mu.Unlock()
	f.connects.Add(1)
	if err := c.Publish(l.resTopic, l.d.Hello(), 1); err != nil {
		f.log.Debug("devicesim: hello", "device", l.d.info.ID, "err", err)
	}
	return nil
}

func (l *mqttLink) retry(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.f.ctx.Err() != nil {
		return
	}
	l.backoff = min(max(l.backoff*2, minBackoff), maxBackoff)
	if !l.f.warnedConnect.Swap(true) {
		l.f.log.Warn("devicesim: a device cannot connect; it and any others retry with backoff (counted in connect_errors)",
			"device", l.d.info.ID, "err", err)
	}
	l.f.log.Debug("devicesim: device cannot connect; retrying", "device", l.d.info.ID, "in", l.backoff, "err", err)
	time.AfterFunc(l.backoff, l.start)
}

// onClose runs when a connection ends: after a reboot the device comes back
// after its down time; after a lost connection it reconnects with backoff.
func (l *mqttLink) onClose(c *leanmqtt.Conn, err error) {
	l.mu.Lock()
	if l.conn != c {
		l.mu.Unlock() // never registered (see connect): nothing to undo
		return
	}
	l.conn = nil
	l.f.online.Add(-1)
	closed, rebooting := l.closed, l.rebooting
	l.rebooting = false
	l.mu.Unlock()
	switch {
	case closed || l.f.ctx.Err() != nil:
	case rebooting:
		l.f.waiting.Add(1)
		time.AfterFunc(l.d.rebootDown(), func() {
			l.f.waiting.Add(-1)
			l.start()
		})
	default:
		l.retry(err)
	}
}

func (l *mqttLink) onMessage(c *leanmqtt.Conn, _ string, payload []byte) {
	f := l.f
	f.requests.Add(1)
	if f.echo.Load() {
		if c.Publish(l.resTopic, payload, 1) == nil {
			f.answered.Add(1)
		}
		return
	}
	if delay := l.d.delay(); delay > 0 {
		time.AfterFunc(delay, func() { l.respond(c, payload) })
		return
	}
	l.respond(c, payload)
}

func (l *mqttLink) respond(c *leanmqtt.Conn, payload []byte) {
	f := l.f
	resp, act := l.d.handle(f.ctx, payload)
	switch act {
	case actReply:
		if err := c.Publish(l.resTopic, resp, 1); err == nil {
			f.answered.Add(1)
		} else if !errors.Is(err, leanmqtt.ErrClosed) {
			f.log.Debug("devicesim: answer", "device", l.d.info.ID, "err", err)
		}
	case actIgnore:
		f.ignored.Add(1)
	case actReboot:
		f.reboots.Add(1)
		l.mu.Lock()
		l.rebooting = true
		l.mu.Unlock()
		c.Drop()
	}
}

func (l *mqttLink) close() {
	l.mu.Lock()
	l.closed = true
	c := l.conn
	l.mu.Unlock()
	if c != nil {
		c.Close()
	}
}
