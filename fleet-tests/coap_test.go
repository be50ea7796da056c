package fleettests

import (
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/devicesim"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/scenario"
)

// TestCoAPFleets restores through the CoAP transport: a group of CoAP devices
// only, and a group mixing CoAP climate controls with MQTT lighting, each in
// one job, then again reading the settings back after each write. Refusals,
// corrupt acknowledgements and unknown hubs end as they must over CoAP too.
func TestCoAPFleets(t *testing.T) {
	spec := loadFleet(t, "testdata/coap.yaml")
	scenario.ScaleTargets(spec, sites(60, 300))
	ctx := testContext(t, 3*time.Minute)
	w := startWorld(t, ctx, spec)
	for _, tc := range []struct {
		group      string
		transports []string
		readBack   bool // read the settings back after each write
	}{
		{"coap-homes", []string{devicesim.TransportCoAP}, false},
		{"mixed-homes", []string{devicesim.TransportCoAP, devicesim.TransportMQTT}, false},
		{"mixed-homes", []string{devicesim.TransportCoAP, devicesim.TransportMQTT}, true},
	} {
		name := tc.group
		if tc.readBack {
			name += " with read-back"
		}
		t.Run(name, func(t *testing.T) {
			expect := w.Expect(tc.group)
			want := wantFromOracle(w, expect)
			restored := map[string]int{} // restored devices by transport
			transport := map[string]string{}
			for _, d := range w.Devices {
				transport[d.ID] = d.Transport
				if d.Transport == devicesim.TransportCoAP && (d.Identifier.Scheme != "coaps" || len(d.CoAPKey) == 0) {
					t.Fatalf("%s speaks CoAP without DTLS: %s", d.ID, devicesim.BaseAddress(d.Identifier))
				}
				if !strings.HasPrefix(devicesim.BaseAddress(d.Identifier), d.Transport) {
					t.Fatalf("%s speaks %s but its identifier is %s", d.ID, d.Transport, devicesim.BaseAddress(d.Identifier))
				}
			}
			// A device's first exchange carries its DTLS handshake, which
			// costs tens of milliseconds of CPU under the race detector:
			// a timeout that leaves room for a burst of them.
			j, p, win := run(t, ctx, w.Server.Engine, restoreSpec(w, tc.group, grouprestore.Rollout{Timeout: 10 * time.Second, Retries: 1, ReadBack: tc.readBack}))
			if p.State != grouprestore.JobDone {
				t.Errorf("job ended %s (%s)", p.State, p.Reason)
			}
			outs := j.Devices()
			checkStates(t, p, outs, want)
			checkTruth(t, w, j, win, expect)
			for _, o := range outs {
				if o.State == grouprestore.Restored {
					restored[transport[o.Device]]++
				}
				if want[o.Device] == grouprestore.Failed && !strings.Contains(o.Reason, "verification failed") {
					t.Errorf("%s stored a corrupted copy over %s: %s, want verification failed", o.Device, transport[o.Device], o)
				}
			}
			for _, tr := range tc.transports {
				if restored[tr] == 0 {
					t.Errorf("no %s device restored: %v", tr, restored)
				}
			}
			c := countOf(want)
			if c[grouprestore.Rejected] == 0 || c[grouprestore.Failed] == 0 {
				t.Errorf("the fleet lacks the refusals and corruptions this test is about: %v", c)
			}
			t.Logf("restored by transport %v", restored)
		})
	}
	checkReferencesUntouched(t, w)
}

// TestScenarioTruthSeesCoAPWrites: the shared ground truth (World.Truth, used
// by fleetvault demo and bench) attributes CoAP writes to their job, which the
// device learns from agent.JobOf in Apply's context, so scenario.Check can
// notice wrong settings sent to a CoAP device.
func TestScenarioTruthSeesCoAPWrites(t *testing.T) {
	spec := loadFleet(t, "testdata/coap.yaml")
	scenario.ScaleTargets(spec, 10)
	ctx := testContext(t, time.Minute)
	w := startWorld(t, ctx, spec)
	j, _, _ := run(t, ctx, w.Server.Engine, restoreSpec(w, "coap-homes", grouprestore.Rollout{Timeout: 10 * time.Second}))
	for _, o := range j.Devices() {
		if o.State == grouprestore.Restored && len(w.Truth().Received(o.Device, j.ID())) == 0 {
			t.Errorf("%s was restored over CoAP, but scenario's ground truth has no write of job %s to it", o.Device, j.ID())
		}
	}
}
