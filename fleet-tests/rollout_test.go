package fleettests

import (
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/scenario"
)

// TestRollout checks rollout control on a live fleet, each step against the
// devices' ground truth: a dry run writes nothing; canary and waves run in
// order; undo puts every device back; cancel skips the rest and writes
// nothing to them; pause starts no device until resumed; abort thresholds
// stop a job after its canary.
func TestRollout(t *testing.T) {
	spec := loadFleet(t, "testdata/rollout.yaml")
	ctx := testContext(t, 5*time.Minute)
	w := startWorld(t, ctx, spec)
	e := w.Server.Engine
	expect := w.Expect("homes")

	t.Run("dry run writes nothing", func(t *testing.T) {
		jobsBefore, err := e.Jobs()
		if err != nil {
			t.Fatal(err)
		}
		plan, err := e.Plan(ctx, restoreSpec(w, "homes", grouprestore.Rollout{Timeout: time.Second}))
		if err != nil {
			t.Fatal(err)
		}
		if len(plan) != len(expect) {
			t.Fatalf("plan of %d devices, want %d", len(plan), len(expect))
		}
		for _, pe := range plan {
			if want := expect[pe.Device].State; pe.State != grouprestore.WouldRestore || want != grouprestore.Restored {
				t.Errorf("%s: plan says %s (%s), the oracle %s", pe.Device, pe.State, pe.Reason, want)
			}
		}
		for _, d := range w.Devices {
			if log := w.Fleet.Device(d.ID).Log(); len(log) > 0 {
				t.Errorf("the dry run wrote to %s: %+v", d.ID, log)
			}
		}
		if snaps := snapshots(t, w); len(snaps) != 0 {
			t.Errorf("the dry run stored %d snapshot pieces, e.g. %s of %s", len(snaps), snaps[0].ID, snaps[0].Client)
		}
		if jobsAfter, err := e.Jobs(); err != nil || len(jobsAfter) != len(jobsBefore) {
			t.Errorf("the dry run journaled a job: %d jobs before, %d after (%v)", len(jobsBefore), len(jobsAfter), err)
		}
	})

	pre := map[string]string{} // each device's settings before the restore
	for id := range expect {
		pre[id] = truth{f: w.Fleet}.Holds(id)
	}
	var restoreJob string
	t.Run("canary then waves, in order", func(t *testing.T) {
		ro := grouprestore.Rollout{Canary: 5, WaveSize: 20, Concurrency: 8, Timeout: time.Second, Retries: 1}
		j, p, win := run(t, ctx, e, restoreSpec(w, "homes", ro))
		restoreJob = j.ID()
		if p.State != grouprestore.JobDone {
			t.Errorf("job ended %s (%s)", p.State, p.Reason)
		}
		outs := j.Devices()
		checkStates(t, p, outs, wantFromOracle(w, expect))
		checkTruth(t, w, j, win, expect)
		tr := truth{w.Fleet, win}
		sizes := []int{5, 20, 20, 15}
		var prevLast time.Time
		next := 0
		for k, n := range sizes {
			var first, last time.Time
			for _, o := range outs[next : next+n] {
				for _, r := range tr.writes(o.Device, j.ID()) {
					if first.IsZero() || r.At.Before(first) {
						first = r.At
					}
					if r.At.After(last) {
						last = r.At
					}
				}
			}
			if first.IsZero() {
				t.Fatalf("wave %d (devices %d-%d) has no writes in the ground truth", k, next, next+n-1)
			}
			if k > 0 && !first.After(prevLast) {
				t.Errorf("wave %d's first write (%s) is not after wave %d's last (%s)", k, first.Format(time.StampMicro), k-1, prevLast.Format(time.StampMicro))
			}
			prevLast, next = last, next+n
		}
		if next != len(outs) {
			t.Fatalf("waves cover %d of %d devices", next, len(outs))
		}
	})

	t.Run("undo puts every device back", func(t *testing.T) {
		if restoreJob == "" {
			t.Skip("no restore to undo")
		}
		undoExpect := map[string]scenario.Expectation{}
		for id, h := range pre {
			undoExpect[id] = scenario.Expectation{Device: id, Want: h, From: id + "'s snapshot", State: grouprestore.Restored}
		}
		j, p, win := run(t, ctx, e, grouprestore.Spec{Kind: grouprestore.KindUndo, Source: restoreJob, Rollout: grouprestore.Rollout{Timeout: time.Second, Retries: 1}})
		want := map[string]grouprestore.State{}
		for id := range pre {
			want[id] = grouprestore.Restored
		}
		checkStates(t, p, j.Devices(), want)
		checkTruth(t, w, j, win, undoExpect)
		for id, h := range pre {
			if got := (truth{f: w.Fleet}).Holds(id); got != h {
				t.Errorf("%s holds %.12s after the undo, held %.12s before the restore", id, got, h)
			}
		}
	})

	t.Run("cancel mid-job skips the rest and writes nothing to them", func(t *testing.T) {
		ro := grouprestore.Rollout{Concurrency: 2, Rate: 20, Timeout: time.Second, Retries: 1}
		win := window{from: time.Now()}
		j, err := e.Start(ctx, restoreSpec(w, "homes", ro))
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, ctx, time.Minute, "five devices restored", func() bool { return j.Progress().Counts[grouprestore.Restored] >= 5 })
		j.Cancel()
		p, err := j.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		win.to = time.Now()
		if p.State != grouprestore.JobCancelled {
			t.Errorf("job ended %s, want cancelled", p.State)
		}
		if p.Counts[grouprestore.Skipped] == 0 || p.Counts[grouprestore.Restored]+p.Counts[grouprestore.Skipped] != p.Total {
			t.Errorf("counts %v of %d: want restored devices, then skipped ones", p.Counts, p.Total)
		}
		tr := truth{w.Fleet, win}
		for _, o := range j.Devices() {
			if o.State == grouprestore.Skipped {
				if ws := tr.writes(o.Device, j.ID()); len(ws) > 0 {
					t.Errorf("%s was skipped but written: %+v", o.Device, ws)
				}
				if want := pre[o.Device]; tr.Holds(o.Device) != want {
					t.Errorf("%s was skipped but no longer holds its settings", o.Device)
				}
			}
		}
		checkTruth(t, w, j, win, expect)
		t.Logf("cancelled at %v", p.Counts)
	})

	t.Run("no device starts after cancel returns", func(t *testing.T) {
		// One device at a time: when Cancel returns, at most the one in
		// flight may still end other than skipped.
		win := window{from: time.Now()}
		j, err := e.Start(ctx, restoreSpec(w, "homes", grouprestore.Rollout{Concurrency: 1, Timeout: time.Second, Retries: 1}))
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, ctx, time.Minute, "three devices restored", func() bool { return j.Progress().Counts[grouprestore.Restored] >= 3 })
		j.Cancel()
		atCancel := j.Progress().Done
		p, err := j.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		win.to = time.Now()
		if after := p.Total - p.Counts[grouprestore.Skipped] - atCancel; after > 1 {
			t.Errorf("%d devices ended after Cancel returned, not skipped (%d had ended before; %v); with one device in flight at most one may", after, atCancel, p.Counts)
		}
		checkTruth(t, w, j, win, expect)
	})

	t.Run("pause starts no device until resumed", func(t *testing.T) {
		const concurrency = 2
		ro := grouprestore.Rollout{Concurrency: concurrency, Rate: 20, Timeout: time.Second, Retries: 1}
		win := window{from: time.Now()}
		j, err := e.Start(ctx, restoreSpec(w, "homes", ro))
		if err != nil {
			t.Fatal(err)
		}
		tr := truth{w.Fleet, window{from: win.from, to: time.Now().Add(time.Hour)}}
		written := func() int {
			n := 0
			for id := range expect {
				if len(tr.writes(id, j.ID())) > 0 {
					n++
				}
			}
			return n
		}
		eventually(t, ctx, time.Minute, "five devices restored", func() bool { return j.Progress().Counts[grouprestore.Restored] >= 5 })
		j.Pause()
		atPause := written()
		if p := j.Progress(); p.State != grouprestore.JobPaused {
			t.Errorf("job is %s after Pause", p.State)
		}
		// Devices in flight finish; no other starts. At the job's rate, a
		// second and a half would start thirty.
		deadline := time.Now().Add(1500 * time.Millisecond)
		for time.Now().Before(deadline) {
			if n := written(); n > atPause+concurrency {
				t.Fatalf("%d devices written while paused (%d at the pause, %d in flight at most)", n, atPause, concurrency)
			}
			time.Sleep(50 * time.Millisecond)
		}
		j.Resume()
		p, err := j.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		win.to = time.Now()
		if p.State != grouprestore.JobDone {
			t.Errorf("job ended %s (%s) after the resume", p.State, p.Reason)
		}
		checkStates(t, p, j.Devices(), wantFromOracle(w, expect))
		checkTruth(t, w, j, win, expect)
		t.Logf("paused with %d devices written; resumed to %v", atPause, p.Counts)
	})

	t.Run("failure threshold aborts after the canary", func(t *testing.T) {
		ro := grouprestore.Rollout{Canary: 10, MaxFailureShare: 0.5, MinFailures: 3, Timeout: time.Second, Retries: 1}
		checkAborted(t, w, "refusing-homes", ro, 10, "failed")
	})

	t.Run("no-match threshold aborts after the canary", func(t *testing.T) {
		ro := grouprestore.Rollout{Canary: 12, MaxNoMatchShare: 0.3, MinNoMatches: 5, Timeout: time.Second, Retries: 1}
		checkAborted(t, w, "unknown-homes", ro, 12, "matched no backup")
	})
	checkReferencesUntouched(t, w)
}

// checkAborted runs a restore to group that must abort on a threshold during
// its canary of n devices: the canary's devices end as the oracle and their
// faults say, every later device is skipped and never written.
func checkAborted(t *testing.T, w *scenario.World, group string, ro grouprestore.Rollout, n int, why string) {
	t.Helper()
	ctx := testContext(t, 2*time.Minute)
	expect := w.Expect(group)
	j, p, win := run(t, ctx, w.Server.Engine, restoreSpec(w, group, ro))
	if p.State != grouprestore.JobAborted || !strings.Contains(p.Reason, why) {
		t.Errorf("job ended %s (%q), want aborted because devices %s", p.State, p.Reason, why)
	}
	outs := j.Devices()
	info := map[string]bool{} // device → has the reject fault
	for _, d := range w.Devices {
		info[d.ID] = d.Faults.Reject
	}
	want := map[string]grouprestore.State{}
	for i, o := range outs {
		switch {
		case i >= n:
			want[o.Device] = grouprestore.Skipped
		case expect[o.Device].State != grouprestore.Restored:
			want[o.Device] = expect[o.Device].State
		case info[o.Device]:
			want[o.Device] = grouprestore.Rejected
		default:
			want[o.Device] = grouprestore.Restored
		}
	}
	checkStates(t, p, outs, want)
	checkTruth(t, w, j, win, expect)
	tr := truth{w.Fleet, win}
	for _, o := range outs[n:] {
		if ws := tr.writes(o.Device, j.ID()); len(ws) > 0 {
			t.Errorf("%s is after the canary and skipped, but was written: %+v", o.Device, ws)
		}
	}
}

// snapshots lists the undo snapshots the catalog holds.
func snapshots(t *testing.T, w *scenario.World) []catalog.Piece {
	t.Helper()
	ps, err := w.Server.Catalog.Pieces(catalog.Query{Group: "snapshots"})
	if err != nil {
		t.Fatal(err)
	}
	return ps
}
