package grouprestore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
)

// TestCapabilitiesGateWrites: a device that does not announce both
// write-settings and idempotent-job, or announces nothing, ends unsupported,
// in a restore and in a dry run, and is never written (agent-protocol.md
// section 9).
func TestCapabilitiesGateWrites(t *testing.T) {
	cases := []struct {
		name string
		caps []string // nil: every capability
		want State
		why  string
	}{
		{name: "all capabilities", caps: nil, want: Restored},
		{name: "no caps at all", caps: []string{}, want: Unsupported, why: "announces no capabilities"},
		{name: "read only", caps: []string{agent.CapReadTag, agent.CapReadSettings}, want: Unsupported, why: "does not announce write-settings and idempotent-job"},
		{name: "writes but not idempotent", caps: []string{agent.CapReadTag, agent.CapReadSettings, agent.CapWriteSettings}, want: Unsupported, why: "does not announce idempotent-job"},
		{name: "unknown capabilities only", caps: []string{"x-vendor"}, want: Unsupported, why: "it announces x-vendor"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := modelHouse(t, 1)
			f.tr.handlers["home000-climate"] = agent.NewHandler("home000-climate", f.devices["home000-climate"], agent.HandlerOptions{Caps: tc.caps})
			e := f.engine()
			defer e.Close()
			plan, err := e.Plan(context.Background(), restoreSpec(Rollout{}))
			if err != nil {
				t.Fatal(err)
			}
			wantPlan := tc.want
			if wantPlan == Restored {
				wantPlan = WouldRestore
			}
			if plan[0].State != wantPlan || !strings.Contains(plan[0].Reason, tc.why) {
				t.Errorf("dry run: %s (%s), want %s with %q", plan[0].State, plan[0].Reason, wantPlan, tc.why)
			}
			j, err := e.Start(context.Background(), restoreSpec(Rollout{}))
			if err != nil {
				t.Fatal(err)
			}
			wait(t, j)
			o := j.Devices()[0]
			if o.State != tc.want || !strings.Contains(o.Reason, tc.why) {
				t.Errorf("restore: %s, want %s with %q", o, tc.want, tc.why)
			}
			applied := f.devices["home000-climate"].applied
			if tc.want != Restored && len(applied) != 0 {
				t.Errorf("written although unsupported: %v", applied)
			}
		})
	}
}

// TestAnswerFromAnotherDeviceWritesNothing: a device that answers with
// another device id than the one addressed (a CoAP address now held by
// another unit) fails, names both ids, and is not written.
func TestAnswerFromAnotherDeviceWritesNothing(t *testing.T) {
	f := modelHouse(t, 2)
	impostor := &testDevice{tag: climate("North"), settings: factory}
	// home000-climate's address is answered by a device whose id is another.
	f.tr.handlers["home000-climate"] = agent.NewHandler("home999-climate", impostor, agent.HandlerOptions{Addresses: []string{"home000-climate"}})
	e := f.engine()
	defer e.Close()
	j, err := e.Start(context.Background(), restoreSpec(Rollout{}))
	if err != nil {
		t.Fatal(err)
	}
	p := wait(t, j)
	if p.Counts[Restored] != 1 || p.Counts[Failed] != 1 {
		t.Fatalf("counts %v, want 1 restored and 1 failed", p.Counts)
	}
	for _, o := range j.Devices() {
		if o.Device == "home000-climate" && (o.State != Failed || !strings.Contains(o.Reason, `device "home999-climate", not "home000-climate"`)) {
			t.Errorf("%s, want failed naming both ids", o)
		}
	}
	if len(impostor.applied) != 0 {
		t.Errorf("the other device was written: %v", impostor.applied)
	}
}

// TestUndoCoversUnverifiedWrites: a device that applied a write but
// acknowledged another hash (verification failed) holds settings the restore
// sent; undo puts it back too. A device that refused the write is left alone.
func TestUndoCoversUnverifiedWrites(t *testing.T) {
	f := modelHouse(t, 3)
	f.devices["home001-climate"].corrupt = true
	f.devices["home002-climate"].reject = true
	e := f.engine()
	defer e.Close()
	j, _ := e.Start(context.Background(), restoreSpec(Rollout{}))
	if p := wait(t, j); p.Counts[Restored] != 1 || p.Counts[Failed] != 1 || p.Counts[Rejected] != 1 {
		t.Fatalf("restore counts %v", p.Counts)
	}
	f.devices["home001-climate"].corrupt = false // the undo's write lands intact
	u, err := e.Start(context.Background(), Spec{Kind: KindUndo, Source: j.ID()})
	if err != nil {
		t.Fatal(err)
	}
	if p := wait(t, u); p.Counts[Restored] != 2 || p.Total != 2 {
		t.Fatalf("undo: %d devices, counts %v; want the restored and the unverified one", p.Total, p.Counts)
	}
	for _, id := range []string{"home000-climate", "home001-climate", "home002-climate"} {
		if got, want := hashOf(t, f.devices[id].current()), hashOf(t, factory); got != want {
			t.Errorf("%s after undo holds %s, want the factory settings %s", id, got, want)
		}
	}
	if n := len(f.devices["home002-climate"].applied); n != 0 {
		t.Errorf("the device that refused was written %d times", n)
	}
}

// TestRestoreHistoryHasTheHash: a restored device's history line carries the
// hash of what was written and verified; others carry none.
func TestRestoreHistoryHasTheHash(t *testing.T) {
	f := modelHouse(t, 2)
	f.devices["home001-climate"].corrupt = true
	e := f.engine()
	defer e.Close()
	j, _ := e.Start(context.Background(), restoreSpec(Rollout{}))
	wait(t, j)
	for _, o := range j.Devices() {
		rec := f.cat.restores[j.ID()+"/"+o.Device]
		want := ""
		if o.State == Restored {
			want = hashOf(t, northSettings)
		}
		if rec.Hash != want {
			t.Errorf("%s (%s): history hash %q, want %q", o.Device, o.State, rec.Hash, want)
		}
	}
}

// TestAttemptsCountEveryRequest: attempts counts each request the job sent
// the device, as docs/api.md says: 2 for a restore (probe, write), 3 with
// read-back, and the retries on top.
func TestAttemptsCountEveryRequest(t *testing.T) {
	cases := []struct {
		name     string
		ro       Rollout
		timeouts int // requests that time out first
		want     int
	}{
		{name: "restore", ro: Rollout{}, want: 2},
		{name: "restore with read-back", ro: Rollout{ReadBack: true}, want: 3},
		{name: "restore after a retried probe", ro: Rollout{Retries: 2, Timeout: 50 * time.Millisecond, Backoff: time.Millisecond}, timeouts: 1, want: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := modelHouse(t, 1)
			f.tr.failN["home000-climate"] = tc.timeouts
			e := f.engine()
			defer e.Close()
			j, err := e.Start(context.Background(), restoreSpec(tc.ro))
			if err != nil {
				t.Fatal(err)
			}
			wait(t, j)
			if o := j.Devices()[0]; o.State != Restored || o.Attempts != tc.want {
				t.Errorf("%s: %d attempts, want %d", o, o.Attempts, tc.want)
			}
		})
	}
}
