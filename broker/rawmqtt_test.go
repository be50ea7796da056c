package broker_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// rawClient speaks just enough MQTT (3.1.1 or 5) over a plain socket to see
// the broker's exact answers: return and reason codes that paho hides.
type rawClient struct {
	net.Conn
	r       *bufio.Reader
	version byte
}

// connectPacket builds a CONNECT with a clean session and keepalive 0.
// pwFlag sets the password flag even for an empty password.
func connectPacket(version byte, clientID, user, pw string, pwFlag bool) []byte {
	str := func(b []byte, s string) []byte { return append(binary.BigEndian.AppendUint16(b, uint16(len(s))), s...) }
	flags := byte(0x02) // clean session
	if user != "" {
		flags |= 0x80
	}
	if pwFlag || pw != "" {
		flags |= 0x40
	}
	body := append(str(nil, "MQTT"), version, flags, 0, 0)
	if version == 5 {
		body = append(body, 0) // no properties
	}
	body = str(body, clientID)
	if user != "" {
		body = str(body, user)
	}
	if flags&0x40 != 0 {
		body = str(body, pw)
	}
	return append(append([]byte{0x10}, remLen(len(body))...), body...)
}

// dialRaw connects a socket to addr, with a deadline of waitFor on every
// exchange.
func dialRaw(t *testing.T, addr string, version byte) *rawClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitFor)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(waitFor))
	return &rawClient{Conn: c, r: bufio.NewReader(c), version: version}
}

// readPacket reads one packet: its first byte and its body.
func (c *rawClient) readPacket() (byte, []byte, error) {
	first, err := c.r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mult := 0, 1
	for i := 0; ; i++ {
		d, err := c.r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(d&0x7f) * mult
		mult *= 128
		if d&0x80 == 0 {
			break
		}
		if i == 3 {
			return 0, nil, fmt.Errorf("remaining length longer than 4 bytes")
		}
	}
	body := make([]byte, n)
	_, err = io.ReadFull(c.r, body)
	return first, body, err
}

// connack sends CONNECT and returns the CONNACK's return (3.1.1) or reason
// (5) code.
func (c *rawClient) connack(clientID, user, pw string, pwFlag bool) (byte, error) {
	if _, err := c.Write(connectPacket(c.version, clientID, user, pw, pwFlag)); err != nil {
		return 0, err
	}
	first, body, err := c.readPacket()
	if err != nil {
		return 0, fmt.Errorf("no CONNACK: %w", err)
	}
	if first != 0x20 || len(body) < 2 {
		return 0, fmt.Errorf("got packet %#x % x, want a CONNACK", first, body)
	}
	return body[1], nil
}

// publishAck publishes at QoS 1 and returns the PUBACK's reason code (0 for
// a 3.1.1 PUBACK, which has none).
func (c *rawClient) publishAck(topic string, id uint16) (byte, error) {
	body := append(binary.BigEndian.AppendUint16(nil, uint16(len(topic))), topic...)
	body = binary.BigEndian.AppendUint16(body, id)
	if c.version == 5 {
		body = append(body, 0)
	}
	body = append(body, "payload"...)
	if _, err := c.Write(append(append([]byte{0x32}, remLen(len(body))...), body...)); err != nil {
		return 0, err
	}
	first, ack, err := c.readPacket()
	if err != nil {
		return 0, fmt.Errorf("no PUBACK: %w", err)
	}
	if first != 0x40 || len(ack) < 2 || binary.BigEndian.Uint16(ack) != id {
		return 0, fmt.Errorf("got packet %#x % x, want PUBACK for id %d", first, ack, id)
	}
	if len(ack) == 2 {
		return 0, nil
	}
	return ack[2], nil
}

// fakeClock is an injectable clock for rate limits and lockouts.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
