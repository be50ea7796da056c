package leanmqtt

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// MaxPacketBytes bounds a packet this client accepts.
const MaxPacketBytes = 2 << 20

// Errors, checked with errors.Is.
var (
	ErrClosed  = errors.New("connection closed")
	ErrRefused = errors.New("refused by the broker")
)

// Options configure one client connection.
type Options struct {
	Addr      string // broker host:port
	ClientID  string
	Username  string
	Password  string
	Version   byte          // 4 (MQTT 3.1.1, default) or 5
	Keepalive time.Duration // default 60s
	// Subscribe lists topic filters subscribed at QoS 1 before Dial returns.
	Subscribe []string
	// OnMessage is called on the reader goroutine for each PUBLISH received,
	// after it has been acknowledged. It owns payload. Publishing from it is
	// allowed; blocking in it stalls this connection.
	OnMessage func(c *Conn, topic string, payload []byte)
	// OnClose is called once, on the reader goroutine, when a connection that
	// Dial returned ends, with the reason (ErrClosed after Close or Drop).
	OnClose func(c *Conn, err error)
	// ReadBufferSize of the connection's reader; default 1024.
	ReadBufferSize int
	// Dialer dials the broker; default a net.Dialer with a 10s timeout.
	Dialer interface {
		DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	}
}

// Conn is one client connection. Its methods are safe for concurrent use.
type Conn struct {
	opts    Options
	nc      net.Conn
	version byte

	mu         sync.Mutex // guards writes, nextID, pendingAck, closed
	nextID     uint16
	pendingAck []byte // an encoded PUBACK to send with the next write
	closed     bool
	lastWrite  atomic.Int64

	inflight atomic.Int64
	timer    *time.Timer
	done     chan struct{}
	err      error // why it ended; guarded by mu
}

// Dial connects, subscribes and starts the reader goroutine.
func Dial(ctx context.Context, opts Options) (*Conn, error) {
	if opts.Version == 0 {
		opts.Version = 4
	}
	if opts.Version != 4 && opts.Version != 5 {
		return nil, fmt.Errorf("leanmqtt: protocol version %d: expected 4 (3.1.1) or 5", opts.Version)
	}
	if opts.Keepalive <= 0 {
		opts.Keepalive = 60 * time.Second
	}
	if opts.ReadBufferSize <= 0 {
		opts.ReadBufferSize = 1024
	}
	dialer := opts.Dialer
	if dialer == nil {
		dialer = &net.Dialer{Timeout: 10 * time.Second}
	}
	nc, err := dialer.DialContext(ctx, "tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("leanmqtt: dial %s: %w", opts.Addr, err)
	}
	c := &Conn{opts: opts, nc: nc, version: opts.Version, done: make(chan struct{})}
	br := bufio.NewReaderSize(nc, opts.ReadBufferSize)
	if err := c.handshake(ctx, br); err != nil {
		nc.Close()
		return nil, fmt.Errorf("leanmqtt: %s as %q: %w", opts.Addr, opts.ClientID, err)
	}
	c.timer = time.AfterFunc(opts.Keepalive/2, c.keepalive)
	go c.readLoop(br)
	return c, nil
}

func (c *Conn) handshake(ctx context.Context, br *bufio.Reader) error {
	deadline := time.Now().Add(10 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.nc.SetDeadline(deadline)
	defer c.nc.SetDeadline(time.Time{})

	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: c.version}
	pk.Connect = packets.ConnectParams{
		ProtocolName:     []byte("MQTT"),
		Clean:            true,
		Keepalive:        uint16(min(c.opts.Keepalive/time.Second, 65535)),
		ClientIdentifier: c.opts.ClientID,
	}
	if c.opts.Username != "" {
		pk.Connect.UsernameFlag, pk.Connect.Username = true, []byte(c.opts.Username)
	}
	if c.opts.Password != "" {
		pk.Connect.PasswordFlag, pk.Connect.Password = true, []byte(c.opts.Password)
	}
	if err := c.writePacket(&pk, (*packets.Packet).ConnectEncode); err != nil {
		return err
	}
	ack, err := c.readPacket(br)
	if err != nil {
		return fmt.Errorf("read CONNACK: %w", err)
	}
	if ack.FixedHeader.Type != packets.Connack {
		return fmt.Errorf("expected CONNACK, got packet type %d", ack.FixedHeader.Type)
	}
	if ack.ReasonCode != 0 {
		return fmt.Errorf("%w: %s", ErrRefused, reason(ack.ReasonCode))
	}
	if len(c.opts.Subscribe) == 0 {
		return nil
	}
	sub := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, ProtocolVersion: c.version, PacketID: 1}
	for _, f := range c.opts.Subscribe {
		sub.Filters = append(sub.Filters, packets.Subscription{Filter: f, Qos: 1})
	}
	if err := c.writePacket(&sub, (*packets.Packet).SubscribeEncode); err != nil {
		return err
	}
	for {
		pk, err := c.readPacket(br)
		if err != nil {
			return fmt.Errorf("read SUBACK: %w", err)
		}
		if pk.FixedHeader.Type != packets.Suback {
			continue // e.g. a PINGRESP; nothing else can come before our SUBACK
		}
		for i, rc := range pk.ReasonCodes {
			if rc >= 0x80 {
				return fmt.Errorf("%w: subscription to %q refused (reason 0x%02x)", ErrRefused, c.opts.Subscribe[min(i, len(c.opts.Subscribe)-1)], rc)
			}
		}
		return nil
	}
}

// writePacket encodes and writes one packet under the write lock.
func (c *Conn) writePacket(pk *packets.Packet, enc func(*packets.Packet, *bytes.Buffer) error) error {
	var buf bytes.Buffer
	if err := enc(pk, &buf); err != nil {
		return fmt.Errorf("encode packet type %d: %w", pk.FixedHeader.Type, err)
	}
	return c.write(buf.Bytes())
}

func (c *Conn) write(b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writeLocked(b)
}

func (c *Conn) writeLocked(b []byte) error {
	if c.closed {
		return ErrClosed
	}
	if c.pendingAck != nil {
		b = append(c.pendingAck, b...)
		c.pendingAck = nil
	}
	if _, err := c.nc.Write(b); err != nil {
		return fmt.Errorf("leanmqtt: write: %w", err)
	}
	c.lastWrite.Store(time.Now().UnixNano())
	return nil
}

// readPacket reads one packet: the fixed header, its length, then its body.
func (c *Conn) readPacket(br *bufio.Reader) (packets.Packet, error) {
	pk := packets.Packet{ProtocolVersion: c.version}
	hb, err := br.ReadByte()
	if err != nil {
		return pk, err
	}
	if err := pk.FixedHeader.Decode(hb); err != nil {
		return pk, fmt.Errorf("fixed header: %w", err)
	}
	n, _, err := packets.DecodeLength(br)
	if err != nil {
		return pk, fmt.Errorf("remaining length: %w", err)
	}
	if n > MaxPacketBytes {
		return pk, fmt.Errorf("packet of %d bytes exceeds %d", n, MaxPacketBytes)
	}
	pk.FixedHeader.Remaining = n
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return pk, err
	}
	switch pk.FixedHeader.Type {
	case packets.Connack:
		err = pk.ConnackDecode(body)
	case packets.Publish:
		err = pk.PublishDecode(body)
	case packets.Puback:
		err = pk.PubackDecode(body)
	case packets.Suback:
		err = pk.SubackDecode(body)
	case packets.Disconnect:
		err = pk.DisconnectDecode(body)
	case packets.Pingresp, packets.Unsuback:
	default:
		err = fmt.Errorf("unexpected packet type %d from the broker", pk.FixedHeader.Type)
	}
	return pk, err
}

func (c *Conn) readLoop(br *bufio.Reader) {
	var err error
	for {
		var pk packets.Packet
		if pk, err = c.readPacket(br); err != nil {
			break
		}
		switch pk.FixedHeader.Type {
		case packets.Publish:
			if pk.FixedHeader.Qos > 1 {
				err = fmt.Errorf("QoS %d publish: only 0 and 1 are spoken", pk.FixedHeader.Qos)
			} else {
				c.receive(&pk)
			}
		case packets.Puback:
			c.inflight.Add(-1)
		case packets.Disconnect:
			err = fmt.Errorf("%w: the broker disconnected (reason 0x%02x)", ErrClosed, pk.ReasonCode)
		}
		if err != nil {
			break
		}
		if br.Buffered() == 0 {
			c.flushAcks()
		}
	}
	c.shutdown(err)
	close(c.done)
	if c.opts.OnClose != nil {
		c.opts.OnClose(c, c.Err())
	}
}

func (c *Conn) receive(pk *packets.Packet) {
	if pk.FixedHeader.Qos == 1 {
		// Acknowledge with the next write: usually the answer the handler
		// publishes at once, so a request costs one write, not two.
		ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, ProtocolVersion: c.version, PacketID: pk.PacketID}
		var buf bytes.Buffer
		_ = ack.PubackEncode(&buf)
		c.mu.Lock()
		c.pendingAck = append(c.pendingAck, buf.Bytes()...)
		c.mu.Unlock()
	}
	if c.opts.OnMessage != nil {
		c.opts.OnMessage(c, pk.TopicName, pk.Payload)
	}
}

// flushAcks writes the acknowledgements no answer carried. The reader calls
// it when it has nothing more buffered, so a burst of messages costs one
// write of PUBACKs, not one each.
func (c *Conn) flushAcks() {
	c.mu.Lock()
	if c.pendingAck != nil && !c.closed {
		_ = c.writeLocked(nil) // a write error ends the reader on its next read
	}
	c.mu.Unlock()
}

// Publish sends payload to topic at QoS 0 or 1. At QoS 1 the PUBACK is
// counted (Inflight) but the message is not retransmitted.
func (c *Conn) Publish(topic string, payload []byte, qos byte) error {
	if qos > 1 {
		return fmt.Errorf("leanmqtt: QoS %d: only 0 and 1 are spoken", qos)
	}
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos}, ProtocolVersion: c.version, TopicName: topic, Payload: payload}
	c.mu.Lock()
	defer c.mu.Unlock()
	if qos == 1 {
		c.nextID++
		if c.nextID == 0 {
			c.nextID = 1
		}
		pk.PacketID = c.nextID
	}
	var buf bytes.Buffer
	buf.Grow(len(topic) + len(payload) + 16)
	if err := pk.PublishEncode(&buf); err != nil {
		return fmt.Errorf("leanmqtt: encode publish to %s: %w", topic, err)
	}
	if err := c.writeLocked(buf.Bytes()); err != nil {
		return err
	}
	if qos == 1 {
		c.inflight.Add(1)
	}
	return nil
}

// Inflight returns the QoS 1 publishes not yet acknowledged.
func (c *Conn) Inflight() int { return int(c.inflight.Load()) }

func (c *Conn) keepalive() {
	idle := time.Duration(time.Now().UnixNano() - c.lastWrite.Load())
	if idle >= c.opts.Keepalive/2 {
		var buf bytes.Buffer
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingreq}}
		_ = pk.PingreqEncode(&buf)
		if c.write(buf.Bytes()) != nil {
			return
		}
	}
	c.mu.Lock()
	if !c.closed {
		c.timer.Reset(c.opts.Keepalive / 2)
	}
	c.mu.Unlock()
}

// Close sends DISCONNECT and closes the connection.
func (c *Conn) Close() error {
	var buf bytes.Buffer
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}, ProtocolVersion: c.version}
	_ = pk.DisconnectEncode(&buf)
	_ = c.write(buf.Bytes())
	c.shutdown(ErrClosed)
	<-c.done
	return nil
}

// Drop closes the connection without DISCONNECT, as a device that loses
// power would; the broker sees the connection end. It does not wait for the
// reader to end (it may be called from OnMessage): Done tells when it has.
func (c *Conn) Drop() {
	c.shutdown(ErrClosed)
}

// shutdown closes the socket once, keeping the first reason; the reader then
// fails its read and closes done.
func (c *Conn) shutdown(err error) {
	c.mu.Lock()
	first := !c.closed
	c.closed = true
	if first {
		if err == nil {
			err = ErrClosed
		}
		c.err = err
	}
	c.mu.Unlock()
	if !first {
		return
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	c.nc.Close()
}

// Done is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, once Done is closed.
func (c *Conn) Err() error {
	select {
	case <-c.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.err
	default:
		return nil
	}
}

// reason explains a CONNACK return code (3.1.1) or reason code (5).
func reason(rc byte) string {
	switch rc {
	case 0x01, 0x84:
		return fmt.Sprintf("unsupported protocol version (0x%02x)", rc)
	case 0x02, 0x85:
		return fmt.Sprintf("client id not allowed (0x%02x)", rc)
	case 0x03, 0x88, 0x89:
		return fmt.Sprintf("broker unavailable or busy (0x%02x)", rc)
	case 0x04, 0x86:
		return fmt.Sprintf("bad username or password (0x%02x)", rc)
	case 0x05, 0x87:
		return fmt.Sprintf("not authorized (0x%02x)", rc)
	}
	return fmt.Sprintf("reason code 0x%02x", rc)
}
