package coap

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/identifiers"
	"github.com/fleetvault/fleetvault/tagmatch"
)

func TestTransportRoundTrips(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			d := startDevice(t, host, nil)
			tr := newTestTransport(t, TransportOptions{Insecure: true})
			ctx := ctxTimeout(t, 10*time.Second)

			resp, err := tr.Do(ctx, d.ident(agent.LocTag), &agent.Request{})
			if err != nil {
				t.Fatalf("read tag: %v", err)
			}
			if z, _ := resp.Tag.Get(tagmatch.KeyZone); z != "South" || resp.Err != nil {
				t.Fatalf("read tag: got %+v", resp)
			}
			if !strings.HasPrefix(resp.ID, tr.prefix) || resp.Device != d.srv.Handler().ID() {
				t.Errorf("read tag: id %q device %q", resp.ID, resp.Device)
			}

			req := writeRequest(t, "job-1", agent.Settings{"setpoint": uint64(19), "mode": "eco"})
			resp, err = tr.Do(ctx, d.ident(agent.LocWrite), req)
			if err != nil || resp.Err != nil {
				t.Fatalf("write: %v %+v", err, resp)
			}
			if !bytes.Equal(resp.Hash, req.Hash) {
				t.Errorf("write: acknowledged hash %x, sent %x", resp.Hash, req.Hash)
			}

			resp, err = tr.Do(ctx, d.ident(agent.LocSettings), &agent.Request{})
			if err != nil || resp.Err != nil {
				t.Fatalf("read settings: %v %+v", err, resp)
			}
			if !bytes.Equal(resp.Settings, req.Settings) || !bytes.Equal(resp.Hash, req.Hash) {
				t.Errorf("read settings: got %x, want %x", resp.Settings, req.Settings)
			}
		})
	}
}

func TestTransportRefusals(t *testing.T) {
	d := startDevice(t, "127.0.0.1", nil)
	tr := newTestTransport(t, TransportOptions{Insecure: true})
	ctx := ctxTimeout(t, 10*time.Second)

	// Write once under job-1 so that a different write under it conflicts.
	if resp, err := tr.Do(ctx, d.ident(agent.LocWrite), writeRequest(t, "job-1", agent.Settings{"a": "b"})); err != nil || resp.Err != nil {
		t.Fatalf("first write: %v %+v", err, resp)
	}
	badHash := writeRequest(t, "job-2", agent.Settings{"a": "c"})
	badHash.Hash = agent.Hash([]byte("other"))

	tests := []struct {
		name   string
		target identifiers.ID
		req    *agent.Request
		code   string
	}{
		// "localhost" reaches the device, which answers only to 127.0.0.1:port.
		{"not addressee", identifiers.ReadTag("coap", "localhost", d.port), &agent.Request{}, agent.CodeNotAddressee},
		{"unsupported location", identifiers.Settings("coap", d.host, d.port, "/xyz"), &agent.Request{}, agent.CodeUnsupported},
		{"unsupported method", identifiers.ID{Scheme: "coap", Address: d.host, Port: d.port, Method: "READ_SNAPSHOT", Params: []string{"snap"}, Location: "/SN"}, &agent.Request{}, agent.CodeUnsupported},
		{"write without job", d.ident(agent.LocWrite), writeRequest(t, "", agent.Settings{"a": "b"}), agent.CodeBadRequest},
		{"hash mismatch", d.ident(agent.LocWrite), badHash, agent.CodeHashMismatch},
		{"conflict", d.ident(agent.LocWrite), writeRequest(t, "job-1", agent.Settings{"a": "z"}), agent.CodeConflict},
		{"idempotent repeat", d.ident(agent.LocWrite), writeRequest(t, "job-1", agent.Settings{"a": "b"}), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tr.Do(ctx, tc.target, tc.req)
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			if got := errCode(resp); got != tc.code {
				t.Fatalf("code %q, want %q (%+v)", got, tc.code, resp.Err)
			}
		})
	}

	d.dev.setReject(true)
	resp, err := tr.Do(ctx, d.ident(agent.LocWrite), writeRequest(t, "job-3", agent.Settings{"setpoint": uint64(99)}))
	if err != nil || errCode(resp) != agent.CodeRejected {
		t.Fatalf("rejected write: %v %+v", err, resp)
	}
}

func TestTransportBlockwise(t *testing.T) {
	d := startDevice(t, "127.0.0.1", nil)
	tr := newTestTransport(t, TransportOptions{Insecure: true})
	ctx := ctxTimeout(t, 20*time.Second)

	big := agent.Settings{}
	for i := range 1100 {
		big[fmt.Sprintf("key-%04d", i)] = strings.Repeat("v", 90)
	}
	req := writeRequest(t, "big-job", big)
	if len(req.Settings) < 100<<10 {
		t.Fatalf("settings of %d bytes; want about 100 KiB", len(req.Settings))
	}
	resp, err := tr.Do(ctx, d.ident(agent.LocWrite), req)
	if err != nil || resp.Err != nil {
		t.Fatalf("write %d bytes: %v %+v", len(req.Settings), err, resp)
	}
	resp, err = tr.Do(ctx, d.ident(agent.LocSettings), &agent.Request{})
	if err != nil || resp.Err != nil {
		t.Fatalf("read back: %v %+v", err, resp)
	}
	if !bytes.Equal(resp.Settings, req.Settings) {
		t.Fatalf("read back %d bytes, wrote %d", len(resp.Settings), len(req.Settings))
	}
	// The PUT went blockwise at once; the GET's answer came back as a first
	// block on the lean path and was fetched again blockwise.
	if st := tr.Stats(); st.Blockwise != 2 {
		t.Errorf("stats %+v: want 2 blockwise exchanges", st)
	}
}

func TestTransportErrors(t *testing.T) {
	tr := newTestTransport(t, TransportOptions{Insecure: true, AckTimeout: 100 * time.Millisecond})

	t.Run("timeout", func(t *testing.T) {
		// A bound socket that never answers.
		silent, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer silent.Close()
		port := silent.LocalAddr().(*net.UDPAddr).Port
		_, err = tr.Do(ctxTimeout(t, 300*time.Millisecond), identifiers.ReadTag("coap", "127.0.0.1", port), &agent.Request{})
		if !errors.Is(err, agent.ErrTimeout) {
			t.Fatalf("got %v, want ErrTimeout", err)
		}
	})
	t.Run("unresolvable", func(t *testing.T) {
		_, err := tr.Do(ctxTimeout(t, 2*time.Second), identifiers.ReadTag("coap", "no-such-host.invalid", 5683), &agent.Request{})
		if !errors.Is(err, agent.ErrUnreachable) {
			t.Fatalf("got %v, want ErrUnreachable", err)
		}
	})
	t.Run("wrong scheme", func(t *testing.T) {
		_, err := tr.Do(ctxTimeout(t, time.Second), identifiers.ReadTag("mqtt", "home1", 0), &agent.Request{})
		if err == nil || !strings.Contains(err.Error(), "scheme") {
			t.Fatalf("got %v, want a scheme error", err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		tr2 := newTestTransport(t, TransportOptions{Insecure: true})
		_ = tr2.Close()
		_, err := tr2.Do(ctxTimeout(t, time.Second), identifiers.ReadTag("coap", "127.0.0.1", 9), &agent.Request{})
		if !errors.Is(err, agent.ErrClosed) {
			t.Fatalf("got %v, want ErrClosed", err)
		}
	})
}

func TestTransportEvictsPeers(t *testing.T) {
	tr := newTestTransport(t, TransportOptions{Insecure: true, MaxPeers: 2})
	ctx := ctxTimeout(t, 10*time.Second)
	for i := range 5 {
		d := startDevice(t, "127.0.0.1", nil)
		if _, err := tr.Do(ctx, d.ident(agent.LocTag), &agent.Request{}); err != nil {
			t.Fatalf("device %d: %v", i, err)
		}
	}
	st := tr.Stats()
	if st.Peers > 2 || st.Evictions < 3 {
		t.Fatalf("stats %+v: want at most 2 peers and 3 evictions", st)
	}
}

func TestTransportInFlightWindow(t *testing.T) {
	t.Run("default follows the receive buffer", func(t *testing.T) {
		tr := newTestTransport(t, TransportOptions{Insecure: true})
		if n := receiveBuffer(tr.conn); n <= 0 || cap(tr.window) != max(64, n/1024) {
			t.Fatalf("receive buffer %d, window %d", n, cap(tr.window))
		}
	})
	t.Run("callers past the window wait their turn", func(t *testing.T) {
		tr := newTestTransport(t, TransportOptions{Insecure: true, MaxInFlight: 1})
		ctx := ctxTimeout(t, 10*time.Second)
		var devices []*testDevice
		for range 3 {
			devices = append(devices, startDevice(t, "127.0.0.1", nil))
		}
		errs := make(chan error, 12)
		for i := range cap(errs) {
			go func() {
				_, err := tr.Do(ctx, devices[i%len(devices)].ident(agent.LocTag), &agent.Request{})
				errs <- err
			}()
		}
		for range cap(errs) {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if len(tr.window) != 0 {
			t.Fatalf("%d window slots still held", len(tr.window))
		}
	})
}

func TestTransportCachesNames(t *testing.T) {
	d := startDevice(t, "127.0.0.1", nil)
	tr := newTestTransport(t, TransportOptions{Insecure: true})
	ctx := ctxTimeout(t, 10*time.Second)
	for range 3 {
		// The device answers only to 127.0.0.1:port, so "localhost" is refused,
		// but it is reached.
		resp, err := tr.Do(ctx, identifiers.ReadTag("coap", "localhost", d.port), &agent.Request{})
		if err != nil || errCode(resp) != agent.CodeNotAddressee {
			t.Fatalf("Do: %v %+v", err, resp)
		}
	}
	tr.namesMu.Lock()
	defer tr.namesMu.Unlock()
	if e, ok := tr.names["localhost:"+fmt.Sprint(d.port)]; len(tr.names) != 1 || !ok || !e.addr.Addr().IsLoopback() {
		t.Fatalf("names %v: want localhost resolved once, to a loopback address", tr.names)
	}
}
