package coap

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/identifiers"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// rawDevice is a scripted CoAP peer on a bare UDP socket: the test decides
// what it answers to each datagram, byte for byte.
type rawDevice struct {
	t    *testing.T
	conn *net.UDPConn
	port int
}

func startRawDevice(t *testing.T) *rawDevice {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &rawDevice{t: t, conn: conn, port: conn.LocalAddr().(*net.UDPAddr).Port}
}

// read returns the next datagram, decoded, and where it came from.
func (d *rawDevice) read() (message.Message, *net.UDPAddr) {
	d.t.Helper()
	buf := make([]byte, 2048)
	_ = d.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, from, err := d.conn.ReadFromUDP(buf)
	if err != nil {
		d.t.Fatalf("device: read: %v", err)
	}
	m := message.Message{Options: make(message.Options, 0, 16)}
	if _, err := coder.DefaultCoder.Decode(buf[:n], &m); err != nil {
		d.t.Fatalf("device: decode %x: %v", buf[:n], err)
	}
	return m, from
}

// readOther returns the next datagram that is not a retransmission of req.
func (d *rawDevice) readOther(req message.Message) message.Message {
	d.t.Helper()
	for {
		m, _ := d.read()
		if m.Type != message.Confirmable || m.MessageID != req.MessageID {
			return m
		}
	}
}

func (d *rawDevice) send(to *net.UDPAddr, m message.Message) {
	d.t.Helper()
	if m.Options == nil {
		m.Options = message.Options{}
	}
	buf := make([]byte, 2048)
	n, err := coder.DefaultCoder.Encode(m, buf)
	if err != nil {
		d.t.Fatalf("device: encode: %v", err)
	}
	if _, err := d.conn.WriteToUDP(buf[:n], to); err != nil {
		d.t.Fatalf("device: send: %v", err)
	}
}

// answerTo is the device's 2.05 answer to a tag GET, with the request's
// correlation id.
func (d *rawDevice) answerTo(req message.Message) []byte {
	d.t.Helper()
	q, _ := req.Options.Queries()
	id := ""
	for _, o := range q {
		if v, ok := strings.CutPrefix(o, QueryID+"="); ok {
			id = v
		}
	}
	b, err := agent.EncodeResponse(&agent.Response{V: agent.Version, ID: id, Device: "raw"})
	if err != nil {
		d.t.Fatal(err)
	}
	return b
}

func cbor() message.Options { return message.Options{{ID: message.ContentFormat, Value: []byte{60}}} }

// leanTestRetransmits is MaxRetransmit in TestLeanExchange: enough that a
// script slowed by a loaded machine still answers within the exchange
// (50 ms doubling five times spans about 2.4 s).
const leanTestRetransmits = 5

func TestLeanExchange(t *testing.T) {
	tests := []struct {
		name string
		// script plays the device; it runs while Do waits.
		script      func(d *rawDevice)
		wantErr     error // nil: a Response from "raw"
		retransmits int   // MaxRetransmit; 0 means leanTestRetransmits
	}{
		{"retransmits a lost request", func(d *rawDevice) {
			first, _ := d.read() // lost
			again, from := d.read()
			if again.MessageID != first.MessageID || string(again.Token) != string(first.Token) {
				d.t.Errorf("retransmission has mid %d token %x; first had %d %x", again.MessageID, again.Token, first.MessageID, first.Token)
			}
			d.send(from, message.Message{Type: message.Acknowledgement, Code: codes.Content, MessageID: again.MessageID,
				Token: again.Token, Options: cbor(), Payload: d.answerTo(again)})
		}, nil, 0},
		{"separate response", func(d *rawDevice) {
			req, from := d.read()
			d.send(from, message.Message{Type: message.Acknowledgement, Code: codes.Empty, MessageID: req.MessageID})
			d.send(from, message.Message{Type: message.Confirmable, Code: codes.Content, MessageID: 7, Token: req.Token,
				Options: cbor(), Payload: d.answerTo(req)})
			ack := d.readOther(req)
			if ack.Type != message.Acknowledgement || ack.Code != codes.Empty || ack.MessageID != 7 {
				d.t.Errorf("separate response acknowledged with %v %v mid %d; want an empty ACK of mid 7", ack.Type, ack.Code, ack.MessageID)
			}
		}, nil, 0},
		{"ignores a wrong token and a stray ack", func(d *rawDevice) {
			req, from := d.read()
			d.send(from, message.Message{Type: message.Acknowledgement, Code: codes.Content, MessageID: req.MessageID ^ 1,
				Token: req.Token, Options: cbor(), Payload: d.answerTo(req)})
			d.send(from, message.Message{Type: message.Acknowledgement, Code: codes.Content, MessageID: req.MessageID,
				Token: []byte("wrongtok"), Options: cbor(), Payload: d.answerTo(req)})
			d.send(from, message.Message{Type: message.Acknowledgement, Code: codes.Content, MessageID: req.MessageID,
				Token: req.Token, Options: cbor(), Payload: d.answerTo(req)})
		}, nil, 0},
		{"reset", func(d *rawDevice) {
			req, from := d.read()
			d.send(from, message.Message{Type: message.Reset, Code: codes.Empty, MessageID: req.MessageID})
		}, agent.ErrUnreachable, 0},
		{"retransmissions exhausted", func(d *rawDevice) {
			for range 2 { // the request and its one retransmission
				d.read()
			}
		}, agent.ErrUnreachable, 1},
		{"request from the device is reset", func(d *rawDevice) {
			req, from := d.read()
			d.send(from, message.Message{Type: message.Confirmable, Code: codes.GET, MessageID: 99, Token: []byte{1}})
			rst := d.readOther(req)
			if rst.Type != message.Reset || rst.MessageID != 99 {
				d.t.Errorf("device's request answered with %v mid %d; want a RST of mid 99", rst.Type, rst.MessageID)
			}
			d.send(from, message.Message{Type: message.Acknowledgement, Code: codes.Content, MessageID: req.MessageID,
				Token: req.Token, Options: cbor(), Payload: d.answerTo(req)})
		}, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := startRawDevice(t)
			retransmits := tc.retransmits
			if retransmits == 0 {
				retransmits = leanTestRetransmits
			}
			tr := newTestTransport(t, TransportOptions{Insecure: true, AckTimeout: 50 * time.Millisecond, MaxRetransmit: retransmits})
			done := make(chan struct{})
			go func() { defer close(done); tc.script(d) }()
			resp, err := tr.Do(ctxTimeout(t, 10*time.Second), identifiers.ReadTag("coap", "127.0.0.1", d.port), &agent.Request{})
			<-done
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %v, %+v; want %v", err, resp, tc.wantErr)
				}
				return
			}
			if err != nil || resp.Device != "raw" {
				t.Fatalf("got %v, %+v; want the device's Response", err, resp)
			}
		})
	}
}

func TestLeanExchangeCancel(t *testing.T) {
	d := startRawDevice(t)
	tr := newTestTransport(t, TransportOptions{Insecure: true})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := tr.Do(ctx, identifiers.ReadTag("coap", "127.0.0.1", d.port), &agent.Request{})
		errc <- err
	}()
	d.read()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	// The peer's slot is free again: the next exchange goes out at once.
	go func() {
		req, from := d.read()
		d.send(from, message.Message{Type: message.Acknowledgement, Code: codes.Content, MessageID: req.MessageID,
			Token: req.Token, Options: cbor(), Payload: d.answerTo(req)})
	}()
	if _, err := tr.Do(ctxTimeout(t, 10*time.Second), identifiers.ReadTag("coap", "127.0.0.1", d.port), &agent.Request{}); err != nil {
		t.Fatalf("after a cancelled exchange: %v", err)
	}
}
