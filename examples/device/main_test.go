package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/agent/coap"
	"github.com/fleetvault/fleetvault/agent/mqtt"
	"github.com/fleetvault/fleetvault/broker/brokertest"
	"github.com/fleetvault/fleetvault/identifiers"
)

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no transport", nil, 2, "give --broker, --coap or both"},
		{"unknown flag", []string{"--nope"}, 2, "nope"},
		{"bad device id", []string{"--coap", "127.0.0.1:0", "--id", "a/b"}, 1, `device id "a/b"`},
		{"bad broker url", []string{"--broker", "http://x:1", "--id", "d1"}, 1, "scheme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := run(t.Context(), tc.args, &stderr); code != tc.code || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tc.code, tc.want)
			}
		})
	}
}

func TestThermostatValidates(t *testing.T) {
	d := newThermostat("North")
	for _, tc := range []struct {
		name string
		s    agent.Settings
		ok   bool
	}{
		{"valid", agent.Settings{"mode": "heat", "setpoint": uint64(19)}, true},
		{"float setpoint", agent.Settings{"setpoint": 22.5}, true},
		{"too hot", agent.Settings{"setpoint": uint64(60)}, false},
		{"bad mode", agent.Settings{"mode": "turbo", "setpoint": 20.0}, false},
		{"unknown key", agent.Settings{"setpoint": 20.0, "colour": "red"}, false},
		{"no setpoint", agent.Settings{"mode": "off"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := d.Apply(t.Context(), tc.s)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, agent.ErrRejected)) {
				t.Errorf("Apply: %v, want ok=%v (or ErrRejected)", err, tc.ok)
			}
		})
	}
}

// TestServesBothTransports runs the example against the embedded broker and
// over CoAP, and restores settings to it through each.
func TestServesBothTransports(t *testing.T) {
	b := brokertest.Start(t, brokertest.Credentials(t, map[string]string{"home0042-climate": "dev-pw"}, map[string]string{"fleetvault": "srv-pw"}))
	url := brokertest.URL(b)
	tr, err := mqtt.NewTransport(t.Context(), mqtt.TransportOptions{BrokerURL: url, Username: "fleetvault", Password: "srv-pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	online := make(chan string, 4)
	tr.OnOnline(func(d string) { online <- d })

	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	coapAddr := udp.LocalAddr().(*net.UDPAddr)
	udp.Close() // free the port for the device; a race with another binder only fails the test

	ctx, cancel := context.WithCancel(t.Context())
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--broker", url, "--id", "home0042-climate", "--password", "dev-pw", "--coap", coapAddr.String()}, &stderr)
	}()
	select {
	case <-online:
	case code := <-done:
		t.Fatalf("exited %d: %s", code, stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatal("the device never came online")
	}

	ct, err := coap.NewTransport(coap.TransportOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ct.Close()
	for _, tc := range []struct {
		name string
		tr   agent.Transport
		base identifiers.ID
	}{
		{"mqtt", tr, identifiers.ID{Scheme: "mqtt", Address: "home0042-climate"}},
		{"coap", ct, identifiers.ID{Scheme: "coap", Address: "127.0.0.1", Port: coapAddr.Port}},
	} {
		t.Run(tc.name, func(t *testing.T) { restore(t, tc.tr, tc.base) })
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d after cancel: %s", code, stderr.String())
	}
}

func restore(t *testing.T, tr agent.Transport, base identifiers.ID) {
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	resp, err := tr.Do(ctx, identifiers.ReadTag(base.Scheme, base.Address, base.Port), &agent.Request{})
	if err != nil || resp.Err != nil {
		t.Fatalf("read tag: %v %v", err, resp)
	}
	if zone, _ := resp.Tag.Get("zone"); zone != "South" {
		t.Errorf("tag %v, want zone South", resp.Tag)
	}
	s, _ := agent.EncodeSettings(agent.Settings{"mode": "cool", "setpoint": 23.5, "job-of": base.Scheme})
	write := identifiers.WriteSettings(base.Scheme, base.Address, base.Port)
	resp, err = tr.Do(ctx, write, &agent.Request{Job: "j-" + base.Scheme, Settings: s, Hash: agent.Hash(s)})
	if err != nil || resp.Err == nil || resp.Err.Code != agent.CodeRejected {
		t.Fatalf("write of an unknown key: %v %+v, want rejected", err, resp)
	}
	s, _ = agent.EncodeSettings(agent.Settings{"mode": "cool", "setpoint": 23.5})
	resp, err = tr.Do(ctx, write, &agent.Request{Job: "j2-" + base.Scheme, Settings: s, Hash: agent.Hash(s)})
	if err != nil || resp.Err != nil || !bytes.Equal(resp.Hash, agent.Hash(s)) {
		t.Fatalf("write: %v %+v, want the applied hash %x", err, resp, agent.Hash(s))
	}
}
