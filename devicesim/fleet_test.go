package devicesim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/agent/coap"
	"github.com/fleetvault/fleetvault/agent/mqtt"
	"github.com/fleetvault/fleetvault/broker/brokertest"
	"github.com/fleetvault/fleetvault/identifiers"
)

// env is a running fleet with a server-side transport that reaches it.
type env struct {
	fleet *Fleet
	tr    agent.Transport
}

// startMQTT starts the embedded broker with the fleet's credentials (provisioned
// from Devices before the fleet starts), the fleet and an agent/mqtt transport.
func startMQTT(t *testing.T, spec *Spec, opts Options) env {
	t.Helper()
	fl, err := New(spec, opts) // first the devices, to provision the broker
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fl.Close() })
	devs := map[string]string{}
	for _, d := range fl.Devices() {
		devs[d.ID] = d.Password
	}
	b := brokertest.Start(t, brokertest.Credentials(t, devs, map[string]string{"server": "server-pw"}))
	opts.BrokerURL = brokertest.URL(b)
	if err := fl.SetBrokerURL(opts.BrokerURL); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := fl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	tr, err := mqtt.NewTransport(ctx, mqtt.TransportOptions{BrokerURL: opts.BrokerURL, Username: "server", Password: "server-pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return env{fleet: fl, tr: tr}
}

func startCoAP(t *testing.T, spec *Spec, opts Options) env {
	t.Helper()
	for _, ty := range spec.Types {
		ty.Transport = TransportCoAP
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fl, err := Start(ctx, spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fl.Close() })
	keys := map[string][]byte{}
	for _, d := range fl.Devices() {
		keys[d.ID] = d.CoAPKey
	}
	tr, err := coap.NewTransport(coap.TransportOptions{Listen: "127.0.0.1:0", AckTimeout: 200 * time.Millisecond, MaxRetransmit: 2,
		Keys: func(_ context.Context, id string) ([]byte, error) { return keys[id], nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return env{fleet: fl, tr: tr}
}

func target(info DeviceInfo, method, loc string) identifiers.ID {
	id := info.Identifier
	id.Method, id.Params, id.Location = method, []string{agent.ParamSettings}, loc
	return id
}

func (e env) readTag(info DeviceInfo, timeout time.Duration) (*agent.Response, error) {
	ctx, cancel := context.WithTimeout(agent.WithDevice(context.Background(), info.ID), timeout)
	defer cancel()
	return e.tr.Do(ctx, target(info, agent.MethodRead, agent.LocTag), &agent.Request{})
}

func (e env) write(info DeviceInfo, job string, s agent.Settings, timeout time.Duration) (*agent.Response, []byte, error) {
	b, err := agent.EncodeSettings(s)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(agent.WithDevice(context.Background(), info.ID), timeout)
	defer cancel()
	resp, err := e.tr.Do(ctx, target(info, agent.MethodWrite, agent.LocWrite), &agent.Request{Job: job, Settings: b, Hash: agent.Hash(b)})
	return resp, agent.Hash(b), err
}

func TestFleetMQTT(t *testing.T) {
	testFleet(t, startMQTT)
}

func TestFleetMQTT5(t *testing.T) {
	testFleet(t, func(t *testing.T, s *Spec, o Options) env {
		o.MQTTVersion = 5
		return startMQTT(t, s, o)
	})
}

func TestFleetCoAP(t *testing.T) {
	testFleet(t, startCoAP)
}

// testFleet drives the small fleet through a transport and checks tags,
// writes, the ground-truth log and every fault's effect.
func testFleet(t *testing.T, start func(*testing.T, *Spec, Options) env) {
	spec := mustLoad(t, "testdata/small.yaml")
	e := start(t, spec, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.fleet.WaitOnline(ctx); err != nil {
		t.Fatal(err)
	}
	st := e.fleet.Stats()
	if st.Devices != 64 || st.Offline != 2 {
		t.Fatalf("stats: %+v, want 64 devices, 2 offline", st)
	}
	// Late joiners come online: wait for them before probing.
	waitFor(t, func() bool { s := e.fleet.Stats(); return s.Waiting == 0 && s.Online == s.Devices-s.Offline }, "late joiners")

	quiet := func(f DeviceFaults) bool { return f.Offline || f.Drop || f.Slow }
	type result struct {
		info       DeviceInfo
		tag        *agent.Response
		tagErr     error
		resp       *agent.Response
		sent       []byte
		writeErr   error
		repeat     *agent.Response
		repeatErr  error
		beforeHash []byte
	}
	results := make([]*result, 0, 64)
	var wg sync.WaitGroup
	for _, info := range e.fleet.Devices() {
		r := &result{info: info, beforeHash: e.fleet.Device(info.ID).SettingsHash()}
		results = append(results, r)
		wg.Add(1)
		go func() {
			defer wg.Done()
			timeout := 10 * time.Second
			if quiet(info.Faults) {
				timeout = 500 * time.Millisecond
			}
			r.tag, r.tagErr = e.readTag(info, timeout)
			if quiet(info.Faults) {
				return
			}
			settings := agent.Settings{"setpoint_c": 23.5, "mode": "eco", "for": info.ID}
			if info.Faults.Reboot {
				timeout = 2 * time.Second
			}
			r.resp, r.sent, r.writeErr = e.write(info, "job-1", settings, timeout)
			if !info.Faults.Reboot {
				r.repeat, _, r.repeatErr = e.write(info, "job-1", settings, timeout)
			}
		}()
	}
	wg.Wait()

	for _, r := range results {
		t.Run(r.info.ID, func(t *testing.T) {
			f := r.info.Faults
			dev := e.fleet.Device(r.info.ID)
			if quiet(f) {
				if !errors.Is(r.tagErr, agent.ErrTimeout) {
					t.Fatalf("faults %+v: tag read gave %v, %v; want a timeout", f, r.tag, r.tagErr)
				}
				if len(dev.Log()) != 0 || !bytes.Equal(dev.SettingsHash(), r.beforeHash) {
					t.Errorf("a silent device changed: log %v", dev.Log())
				}
				return
			}
			if r.tagErr != nil || r.tag.Err != nil {
				t.Fatalf("tag read: %v %+v", r.tagErr, r.tag)
			}
			if fmt.Sprint(r.tag.Tag) != fmt.Sprint(r.info.Tag) {
				t.Errorf("tag %v, want %v", r.tag.Tag, r.info.Tag)
			}
			log := dev.Log()
			if len(log) == 0 {
				t.Fatal("no write in the device's log")
			}
			switch {
			case f.Reboot:
				if log[0].Outcome != OutcomeRebootApplied || !log[0].Applied {
					t.Errorf("reboot: first record %+v, want %s", log[0], OutcomeRebootApplied)
				}
				if r.writeErr == nil && r.resp.Err == nil && !bytes.Equal(r.resp.Hash, r.sent) {
					t.Errorf("reboot: answered %x after coming back, want %x", r.resp.Hash, r.sent)
				}
				if !bytes.Equal(dev.SettingsHash(), r.sent) {
					t.Errorf("reboot with applied: 1: the write is not applied")
				}
			case f.Reject:
				if r.writeErr != nil || r.resp.Err == nil || r.resp.Err.Code != agent.CodeRejected {
					t.Fatalf("reject: %v %+v", r.writeErr, r.resp)
				}
				if log[0].Outcome != OutcomeRejected || log[0].Applied || !bytes.Equal(dev.SettingsHash(), r.beforeHash) {
					t.Errorf("reject: log %+v; settings changed: %v", log, !bytes.Equal(dev.SettingsHash(), r.beforeHash))
				}
			case f.Corrupt:
				if r.writeErr != nil || r.resp.Err != nil || bytes.Equal(r.resp.Hash, r.sent) || len(r.resp.Hash) == 0 {
					t.Fatalf("corrupt: %v %+v", r.writeErr, r.resp)
				}
				if log[0].Outcome != OutcomeCorrupted || !log[0].Corrupted || !bytes.Equal(log[0].Answered, r.resp.Hash) {
					t.Errorf("corrupt: log %+v", log)
				}
			default:
				if r.writeErr != nil || r.resp.Err != nil || !bytes.Equal(r.resp.Hash, r.sent) {
					t.Fatalf("write: %v %+v", r.writeErr, r.resp)
				}
				if log[0].Outcome != OutcomeApplied || !bytes.Equal(log[0].Sent, r.sent) || !bytes.Equal(log[0].Answered, r.sent) {
					t.Errorf("write: log %+v", log)
				}
				if got := dev.CurrentSettings(); got["for"] != r.info.ID {
					t.Errorf("settings after write: %v", got)
				}
				if r.repeatErr != nil || r.repeat.Err != nil || !bytes.Equal(r.repeat.Hash, r.sent) {
					t.Errorf("repeat: %v %+v", r.repeatErr, r.repeat)
				}
			}
		})
	}

	// A rebooted device comes back; writing again lands.
	for _, r := range results {
		if !r.info.Faults.Reboot {
			continue
		}
		waitFor(t, func() bool {
			resp, err := e.readTag(r.info, 2*time.Second)
			return err == nil && resp.Err == nil
		}, r.info.ID+" back after its reboot")
		resp, sent, err := e.write(r.info, "job-2", agent.Settings{"after": "reboot"}, 10*time.Second)
		if err != nil || resp.Err != nil || !bytes.Equal(resp.Hash, sent) {
			t.Errorf("%s: write after reboot: %v %+v", r.info.ID, err, resp)
		}
	}
	if st := e.fleet.Stats(); st.Reboots != 2 || st.Writes == 0 || st.Requests == 0 {
		t.Errorf("stats after the run: %+v", st)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
