package coap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/identifiers"
	"github.com/fleetvault/fleetvault/tagmatch"
)

var testKey = []byte("fleetvault-test-key-0001") // printable, so coap-client -k can carry it

// startSecureDevice serves a fake device over DTLS with key on a free
// loopback port; its id is "dev-<port>".
func startSecureDevice(t testing.TB, key []byte) *testDevice {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := conn.LocalAddr().(*net.UDPAddr).Port
	dev := newFakeDevice("South")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	h := agent.NewHandler("dev-"+strconv.Itoa(port), dev, agent.HandlerOptions{Addresses: []string{addr}})
	srv, err := NewSecureServer(conn, h, key, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	serveTest(t, srv)
	return &testDevice{dev: dev, srv: srv, port: port, host: "127.0.0.1"}
}

func (d *testDevice) id() string { return d.srv.Handler().ID() }

func (d *testDevice) secureIdent(location string) identifiers.ID {
	return identifiers.Settings("coaps", d.host, d.port, location)
}

// keysOf is a KeyFunc holding one key per device.
func keysOf(keys map[string][]byte) KeyFunc {
	return func(_ context.Context, device string) ([]byte, error) {
		if k, ok := keys[device]; ok {
			return k, nil
		}
		return nil, fmt.Errorf("device %s: %w", device, ErrNoKey)
	}
}

func TestSecureDeviceRefusesPlainCoAP(t *testing.T) {
	d := startSecureDevice(t, testKey)
	plain := newTestTransport(t, TransportOptions{Insecure: true, AckTimeout: 100 * time.Millisecond})
	for _, tc := range []struct {
		name string
		loc  string
		req  *agent.Request
	}{
		{"read tag", agent.LocTag, &agent.Request{}},
		{"read settings", agent.LocSettings, &agent.Request{}},
		{"write settings", agent.LocWrite, writeRequest(t, "pwn-job", agent.Settings{"pwned": true})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := plain.Do(ctxTimeout(t, 5*time.Second), d.ident(tc.loc), tc.req)
			if !errors.Is(err, ErrInsecure) {
				t.Fatalf("plain %s: err %v, want ErrInsecure (4.01 from the device)", tc.name, err)
			}
		})
	}
	got, _ := d.dev.Settings(context.Background())
	if _, pwned := got["pwned"]; pwned || got["setpoint"] != uint64(21) {
		t.Fatalf("device settings %v after plain requests; want them untouched", got)
	}
	if st := d.srv.Stats(); st.Insecure < 3 || st.Answered != 0 || st.Refused != 0 {
		t.Fatalf("device stats %+v: want 3 plain requests refused, none served", st)
	}
	if hs := d.srv.Handler().Stats(); hs != (agent.HandlerStats{}) {
		t.Fatalf("handler stats %+v: the handler saw a plain request", hs)
	}
}

func TestTransportRefusesPlainCoAP(t *testing.T) {
	d := startDevice(t, "127.0.0.1", nil)
	tr := newTestTransport(t, TransportOptions{}) // no Insecure
	_, err := tr.Do(ctxTimeout(t, 5*time.Second), d.ident(agent.LocTag), &agent.Request{})
	if !errors.Is(err, ErrInsecure) {
		t.Fatalf("plain CoAP without Insecure: err %v, want ErrInsecure", err)
	}
	if !strings.Contains(err.Error(), "--insecure-coap") {
		t.Errorf("error %q does not say how to allow plain CoAP", err)
	}
	if st := d.srv.Stats(); st.Answered+st.Refused+st.Malformed != 0 {
		t.Fatalf("device stats %+v: the transport sent plain CoAP", st)
	}
}

func TestSecureExchange(t *testing.T) {
	d := startSecureDevice(t, testKey)
	other := startSecureDevice(t, []byte("another-devices-key-0002"))
	for _, tc := range []struct {
		name    string
		keys    KeyFunc
		device  string // named in the context
		target  *testDevice
		wantErr error
	}{
		{"right key", keysOf(map[string][]byte{d.id(): testKey}), d.id(), d, nil},
		{"wrong key", keysOf(map[string][]byte{d.id(): []byte("fleetvault-wrong-key-001")}), d.id(), d, ErrHandshake},
		{"no key", keysOf(nil), d.id(), d, ErrNoKey},
		{"no key store", nil, d.id(), d, ErrNoKey},
		{"no device named", keysOf(map[string][]byte{d.id(): testKey}), "", d, ErrNoKey},
		{"another device's identity and key", keysOf(map[string][]byte{other.id(): []byte("another-devices-key-0002")}), other.id(), d, ErrHandshake},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTestTransport(t, TransportOptions{Keys: tc.keys, HandshakeTimeout: time.Second})
			ctx := ctxTimeout(t, 10*time.Second)
			if tc.device != "" {
				ctx = agent.WithDevice(ctx, tc.device)
			}
			resp, err := tr.Do(ctx, tc.target.secureIdent(agent.LocTag), &agent.Request{})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || resp.Err != nil {
				t.Fatalf("probe: %v %+v", err, resp)
			}
			if z, _ := resp.Tag.Get(tagmatch.KeyZone); z != "South" || resp.Device != d.id() {
				t.Fatalf("answer %+v", resp)
			}
			settings := agent.Settings{"setpoint": uint64(23), "table": strings.Repeat("y", 5000)}
			w := writeRequest(t, "secure-job", settings)
			resp, err = tr.Do(ctx, tc.target.secureIdent(agent.LocWrite), w)
			if err != nil || resp.Err != nil {
				t.Fatalf("write over DTLS, blockwise: %v %+v", err, resp)
			}
			if got, _ := d.dev.Settings(ctx); got["setpoint"] != uint64(23) {
				t.Fatalf("device holds %v after the write", got)
			}
			if st := tr.Stats(); st.Handshakes != 1 || st.Sessions != 1 {
				t.Fatalf("transport stats %+v: want one handshake, one session for two exchanges", st)
			}
		})
	}
	if got, _ := d.dev.Settings(context.Background()); got["setpoint"] != uint64(23) {
		t.Fatalf("device holds %v", got)
	}
}

// TestSecureSessionIdle: a session silent for IdleTimeout is closed on both
// sides, its share of the socket forgotten; the next exchange shakes hands
// again.
func TestSecureSessionIdle(t *testing.T) {
	d := startSecureDevice(t, testKey)
	tr := newTestTransport(t, TransportOptions{Keys: keysOf(map[string][]byte{d.id(): testKey}), IdleTimeout: 100 * time.Millisecond})
	probe := func() {
		t.Helper()
		ctx := agent.WithDevice(ctxTimeout(t, 10*time.Second), d.id())
		if resp, err := tr.Do(ctx, d.secureIdent(agent.LocTag), &agent.Request{}); err != nil || resp.Err != nil {
			t.Fatalf("probe: %v %+v", err, resp)
		}
	}
	probe()
	deadline := time.Now().Add(15 * time.Second)
	for tr.Stats().Sessions != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: the idle session is still open", tr.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	probe()
	if st := tr.Stats(); st.Handshakes != 2 || st.Sessions != 1 {
		t.Fatalf("stats %+v: want a second handshake after the idle close", st)
	}
}
