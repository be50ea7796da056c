package coap

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

func FuzzDecodeQuery(f *testing.F) {
	f.Add("v=1\x00id=x\x00ident=coap://127.0.0.1:5683?READ:SETTINGS?TAG")
	f.Add("v=1\x00id=x\x00ident=coap://[::1]?READ:SETTINGS?SETTINGS\x00job=j\x00extra=1")
	f.Add("v=x\x00v=1")
	f.Add("")
	f.Fuzz(func(t *testing.T, joined string) {
		req, err := decodeQuery(strings.Split(joined, "\x00"))
		if err == nil {
			// What decodes encodes back into options that decode the same.
			q, qerr := encodeQuery(req)
			if qerr != nil {
				return // an option too long for CoAP: refused on the way out
			}
			again, err := decodeQuery(q)
			if err != nil || again.V != req.V || again.ID != req.ID || again.Ident != req.Ident || again.Job != req.Job {
				t.Fatalf("round trip of %+v: %+v, %v", req, again, err)
			}
		}
	})
}

func FuzzCheckAnswer(f *testing.F) {
	ok, _ := agent.EncodeResponse(&agent.Response{ID: "a", Device: "d"})
	refused, _ := agent.EncodeResponse(&agent.Response{ID: "a", Err: &agent.Error{Code: agent.CodeConflict}})
	f.Add(uint8(codes.Content), ok)
	f.Add(uint8(codes.Conflict), refused)
	f.Add(uint8(codes.BadRequest), ok)
	f.Add(uint8(codes.Content), []byte{0xff, 0x00})
	f.Fuzz(func(t *testing.T, code uint8, body []byte) {
		req := &agent.Request{ID: "a", Ident: "coap://127.0.0.1?READ:SETTINGS?TAG"}
		resp, err := checkAnswer(codes.Code(code), body, req)
		if err == nil && resp == nil {
			t.Fatal("nil response and nil error")
		}
		if err == nil && code>>5 != 2 && resp.Err == nil {
			t.Fatalf("a %v answer without an error was accepted", codes.Code(code))
		}
	})
}

// FuzzServe feeds arbitrary datagrams, decoded as CoAP, to the device's
// request mapping as the lean path decodes them: every one that decodes gets
// a Response, none panics.
func FuzzServe(f *testing.F) {
	h := agent.NewHandler("dev", newFakeDevice("South"), agent.HandlerOptions{Addresses: []string{"127.0.0.1:5683"}})
	s := NewServer(mustUDP(f), h, ServerOptions{})
	f.Cleanup(func() { _ = s.Close() })
	for _, seed := range seedDatagrams(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, datagram []byte) {
		m := message.Message{Options: make(message.Options, 0, maxRequestOptions)}
		if _, err := coder.DefaultCoder.Decode(datagram, &m); err != nil {
			return
		}
		_ = leanOptions(m.Options)
		in, err := incomingOf(&m)
		if err != nil {
			return
		}
		resp := s.serve(context.Background(), in)
		if resp == nil || resp.Device != "dev" {
			t.Fatalf("answer %+v", resp)
		}
		if _, err := agent.EncodeResponse(resp); err != nil {
			t.Fatalf("unencodable answer %+v: %v", resp, err)
		}
	})
}

func mustUDP(tb testing.TB) *net.UDPConn {
	tb.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// seedDatagrams are well-formed requests for every resource, encoded.
func seedDatagrams(tb testing.TB) [][]byte {
	tb.Helper()
	var out [][]byte
	add := func(code codes.Code, path string, query []string, body []byte) {
		m := pool.NewMessage(context.Background())
		m.SetCode(code)
		m.SetMessageID(1)
		m.SetType(message.Confirmable)
		m.SetToken([]byte{1, 2})
		if err := m.SetPath(path); err != nil {
			tb.Fatal(err)
		}
		for _, q := range query {
			m.AddQuery(q)
		}
		if body != nil {
			m.SetBody(strings.NewReader(string(body)))
		}
		b, err := m.MarshalWithEncoder(coder.DefaultCoder)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	q := []string{"v=1", "id=x", "ident=coap://127.0.0.1:5683?READ:SETTINGS?TAG"}
	add(codes.GET, PathTag, q, nil)
	add(codes.GET, PathSettings, q, nil)
	add(codes.DELETE, PathTag, q, nil)
	add(codes.GET, "/other", nil, nil)
	body, _ := agent.EncodeRequest(&agent.Request{ID: "w", Ident: "coap://127.0.0.1:5683?WRITE:SETTINGS?TAG+SETTINGS", Job: "j"})
	add(codes.PUT, PathSettings, nil, body)
	add(codes.POST, PathRequest, nil, []byte{0xa1})
	return out
}

// TestDeviceSurvivesGarbage sends a device datagrams that are not CoAP, not
// well-formed, oversized, or blocks far past the message limit, then checks
// it still answers and counted what it threw away.
func TestDeviceSurvivesGarbage(t *testing.T) {
	d := startDevice(t, "127.0.0.1", nil)
	raw, err := net.DialUDP("udp", nil, d.srv.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	farBlock := seedDatagrams(t)[4]
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"not coap", []byte("hello, device")},
		{"bad version", []byte{0x00, 0x01, 0x00, 0x01}},
		{"truncated options", []byte{0x40, 0x01, 0x00, 0x01, 0xbd}},
		{"oversized", make([]byte, DefaultMaxDatagram+100)},
		{"far block", withBlock1(t, farBlock, 5000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := raw.Write(tc.b); err != nil {
				t.Fatal(err)
			}
		})
	}
	tr := newTestTransport(t, TransportOptions{Insecure: true})
	if resp, err := tr.Do(ctxTimeout(t, 10*time.Second), d.ident(agent.LocTag), &agent.Request{}); err != nil || resp.Err != nil {
		t.Fatalf("device no longer answers: %v %+v", err, resp)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := d.srv.Stats()
		if st.Dropped >= 1 && st.Malformed >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: want the far block dropped and malformed datagrams counted", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// withBlock1 returns datagram with a Block1 option for block num of 1024 bytes.
func withBlock1(t *testing.T, datagram []byte, num int64) []byte {
	t.Helper()
	m := pool.NewMessage(context.Background())
	if _, err := m.UnmarshalWithDecoder(coder.DefaultCoder, datagram); err != nil {
		t.Fatal(err)
	}
	m.SetOptionUint32(27, uint32(num<<4|1<<3|6)) // Block1: num, more, SZX 6 (1024)
	b, err := m.MarshalWithEncoder(coder.DefaultCoder)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
