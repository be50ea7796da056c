package coap

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// rawClient talks to a device endpoint datagram by datagram.
type rawClient struct {
	t    *testing.T
	conn *net.UDPConn
	to   *net.UDPAddr
}

func newRawClient(t *testing.T, d *testDevice) *rawClient {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &rawClient{t: t, conn: conn, to: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: d.port}}
}

func (c *rawClient) sendRaw(b []byte) {
	c.t.Helper()
	if _, err := c.conn.WriteToUDP(b, c.to); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) send(m message.Message) []byte {
	c.t.Helper()
	if m.Options == nil {
		m.Options = message.Options{}
	}
	buf := make([]byte, 4096)
	n, err := coder.DefaultCoder.Encode(m, buf)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(buf[:n])
	return buf[:n]
}

// read returns the next datagram, raw and decoded.
func (c *rawClient) read() ([]byte, message.Message) {
	c.t.Helper()
	buf := make([]byte, 4096)
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _, err := c.conn.ReadFromUDP(buf)
	if err != nil {
		c.t.Fatalf("client: read: %v", err)
	}
	m := message.Message{Options: make(message.Options, 0, 16)}
	if _, err := coder.DefaultCoder.Decode(buf[:n], &m); err != nil {
		c.t.Fatalf("client: decode %x: %v", buf[:n], err)
	}
	return buf[:n], m
}

// tagGet is a confirmable GET of the device's tag with mid, and extra options.
func tagGet(d *testDevice, mid int32, extra ...message.Option) message.Message {
	opts := message.Options{}
	for _, seg := range strings.Split(strings.TrimPrefix(PathTag, "/"), "/") {
		opts = append(opts, message.Option{ID: message.URIPath, Value: []byte(seg)})
	}
	for _, q := range []string{"v=1", "id=raw-" + fmt.Sprint(mid), "ident=" + d.ident(agent.LocTag).String()} {
		opts = append(opts, message.Option{ID: message.URIQuery, Value: []byte(q)})
	}
	for _, o := range extra {
		opts = opts.Add(o)
	}
	return message.Message{Type: message.Confirmable, Code: codes.GET, MessageID: mid, Token: []byte{0xa, byte(mid)}, Options: opts}
}

func TestDeviceLeanPath(t *testing.T) {
	t.Run("duplicate gets the same answer, handled once", func(t *testing.T) {
		d := startDevice(t, "127.0.0.1", nil)
		c := newRawClient(t, d)
		c.send(tagGet(d, 10))
		first, m := c.read()
		if m.Type != message.Acknowledgement || m.Code != codes.Content || m.MessageID != 10 {
			t.Fatalf("answer %v %v mid %d; want a piggybacked 2.05 ACK of mid 10", m.Type, m.Code, m.MessageID)
		}
		c.send(tagGet(d, 10))
		again, _ := c.read()
		if !bytes.Equal(first, again) {
			t.Fatalf("duplicate answered %x; first answer %x", again, first)
		}
		if st := d.srv.Stats(); st.Answered != 1 {
			t.Fatalf("stats %+v: want the request answered once", st)
		}
	})
}

// TestDeviceLeavesToGoCoAP covers what the lean path hands to go-coap.
func TestDeviceLeavesToGoCoAP(t *testing.T) {
	t.Run("unknown critical option", func(t *testing.T) {
		d := startDevice(t, "127.0.0.1", nil)
		c := newRawClient(t, d)
		c.send(tagGet(d, 11, message.Option{ID: 9, Value: []byte("x")})) // 9: critical, unassigned
		_, m := c.read()
		if m.Code != codes.BadOption || m.MessageID != 11 {
			t.Fatalf("answer %v mid %d; want 4.02 Bad Option", m.Code, m.MessageID)
		}
	})
	t.Run("non-confirmable request goes to go-coap", func(t *testing.T) {
		d := startDevice(t, "127.0.0.1", nil)
		c := newRawClient(t, d)
		req := tagGet(d, 12)
		req.Type = message.NonConfirmable
		c.send(req)
		_, m := c.read()
		// go-coap answers a NON request with a separate (confirmable) response.
		if m.Type == message.Acknowledgement || m.Code != codes.Content {
			t.Fatalf("answer %v %v; want a separate 2.05", m.Type, m.Code)
		}
	})
	t.Run("ping", func(t *testing.T) {
		d := startDevice(t, "127.0.0.1", nil)
		c := newRawClient(t, d)
		c.sendRaw([]byte{0x40, 0, 0, 13}) // empty CON, mid 13
		_, m := c.read()
		if m.Type != message.Reset || m.MessageID != 13 {
			t.Fatalf("ping answered %v mid %d; want RST of mid 13", m.Type, m.MessageID)
		}
	})
	t.Run("malformed confirmable", func(t *testing.T) {
		d := startDevice(t, "127.0.0.1", nil)
		c := newRawClient(t, d)
		c.sendRaw([]byte{0x40, 0x01, 0, 14, 0xff}) // a payload marker with no payload
		_, m := c.read()
		if m.Type != message.Reset || m.MessageID != 14 {
			t.Fatalf("answered %v mid %d; want RST of mid 14", m.Type, m.MessageID)
		}
		if d.srv.Stats().Malformed == 0 {
			t.Error("malformed datagram not counted")
		}
		d.srv.mu.Lock()
		n := len(d.srv.conns)
		d.srv.mu.Unlock()
		if n != 0 {
			t.Errorf("%d go-coap connections kept for a malformed datagram", n)
		}
	})
	t.Run("answer over a block goes blockwise", func(t *testing.T) {
		d := startDevice(t, "127.0.0.1", nil)
		big := agent.Settings{"table": strings.Repeat("x", 3000)}
		if err := d.dev.Apply(t.Context(), big); err != nil {
			t.Fatal(err)
		}
		c := newRawClient(t, d)
		req := tagGet(d, 15)
		req.Options = message.Options{}
		for _, seg := range strings.Split(strings.TrimPrefix(PathSettings, "/"), "/") {
			req.Options = append(req.Options, message.Option{ID: message.URIPath, Value: []byte(seg)})
		}
		for _, q := range []string{"v=1", "id=raw-15", "ident=" + d.ident(agent.LocSettings).String()} {
			req.Options = append(req.Options, message.Option{ID: message.URIQuery, Value: []byte(q)})
		}
		c.send(req)
		_, m := c.read()
		if m.Code != codes.Content || !m.Options.HasOption(message.Block2) || len(m.Payload) != 1024 {
			t.Fatalf("answer %v with %d bytes, block2 %v; want the first 1024-byte block", m.Code, len(m.Payload), m.Options.HasOption(message.Block2))
		}
	})
}

func TestDeviceReusedMessageID(t *testing.T) {
	d := startDevice(t, "127.0.0.1", nil)
	c := newRawClient(t, d)
	req := tagGet(d, 20)
	c.send(req)
	first, _ := c.read()
	// A new request (a new token and correlation id) under the same message
	// id is answered afresh, not with the answer kept for the first.
	req.Token = []byte{0xb, 20}
	c.send(req)
	second, m := c.read()
	if bytes.Equal(first, second) || m.MessageID != 20 {
		t.Fatalf("reused message id answered with the kept answer")
	}
	if st := d.srv.Stats(); st.Answered != 2 {
		t.Fatalf("stats %+v: want two requests answered", st)
	}
}
