package fleettests

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/devicesim"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/scenario"
)

// testLogger returns a logger for the server and the fleet: silent unless
// FLEETTESTS_LOG names a level (debug, info, warn, error), then to stderr.
func testLogger() *slog.Logger {
	var lvl slog.Level
	switch os.Getenv("FLEETTESTS_LOG") {
	case "":
		return slog.New(slog.DiscardHandler)
	case "debug":
		lvl = slog.LevelDebug
	case "info":
		lvl = slog.LevelInfo
	case "warn":
		lvl = slog.LevelWarn
	default:
		lvl = slog.LevelError
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

// testContext bounds a whole test, well inside go test's own timeout.
func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// loadFleet reads a fleet file, relative to the package directory.
func loadFleet(t *testing.T, path string) *devicesim.Spec {
	t.Helper()
	spec, err := devicesim.Load(path)
	if err != nil {
		t.Fatalf("load fleet: %v", err)
	}
	return spec
}

// sites picks a fleet size: short under -short, else long.
func sites(short, long int) int {
	if testing.Short() {
		return short
	}
	return long
}

// startWorld starts an installation, its server and the fleet, closed when
// the test ends, and backs up the reference groups.
func startWorld(t *testing.T, ctx context.Context, spec *devicesim.Spec) *scenario.World {
	t.Helper()
	return startWorldIn(t, ctx, spec, t.TempDir())
}

// startWorldIn is startWorld with the installation in dir.
func startWorldIn(t *testing.T, ctx context.Context, spec *devicesim.Spec, dir string) *scenario.World {
	t.Helper()
	w, err := scenario.Start(ctx, scenario.Options{Fleet: spec, Dir: dir, Logger: testLogger()})
	if err != nil {
		t.Fatalf("start world: %v", err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("close world: %v", err)
		}
	})
	if _, err := w.BackupReferences(ctx); err != nil {
		t.Fatalf("back up the reference groups: %v", err)
	}
	return w
}

// restoreSpec is a restore from the world's backup group to target.
func restoreSpec(w *scenario.World, target string, ro grouprestore.Rollout) grouprestore.Spec {
	return grouprestore.Spec{Kind: grouprestore.KindRestore, Source: w.BackupGroup, Target: target, Rollout: ro}
}

// run starts a job, waits for its end and returns it with its final
// progress and the window of time its writes fall in.
func run(t *testing.T, ctx context.Context, e *grouprestore.Engine, spec grouprestore.Spec) (*grouprestore.Job, grouprestore.Progress, window) {
	t.Helper()
	win := window{from: time.Now()}
	j, err := e.Start(ctx, spec)
	if err != nil {
		t.Fatalf("start %s of %s to %s: %v", spec.Kind, spec.Source, spec.Target, err)
	}
	p, err := j.Wait(ctx)
	if err != nil {
		t.Fatalf("job %s did not end: %v (progress %+v)", j.ID(), err, p)
	}
	win.to = time.Now()
	t.Logf("job %s (%s %s → %s): %s in %s, %v", j.ID(), spec.Kind, spec.Source, spec.Target, p.State, p.Elapsed.Round(time.Millisecond), p.Counts)
	return j, p, win
}

// window is when a job ran: CoAP devices do not learn the job id of a write,
// so their writes are attributed to the job that ran when they arrived.
type window struct{ from, to time.Time }

// truth is the fleet's ground truth for one job: a device's writes carrying
// the job's id, and its writes without an id (CoAP) made while the job ran.
// Only one job writes to a fleet at a time in these tests.
type truth struct {
	f   *devicesim.Fleet
	win window
}

var _ scenario.Truth = truth{}

func (tr truth) Received(device, job string) []string {
	var out []string
	for _, r := range tr.writes(device, job) {
		out = append(out, hex.EncodeToString(r.Sent))
	}
	return out
}

func (tr truth) writes(device, job string) []devicesim.WriteRecord {
	d := tr.f.Device(device)
	if d == nil {
		return nil
	}
	var out []devicesim.WriteRecord
	for _, r := range d.Log() {
		if r.Job == job || (r.Job == "" && !r.At.Before(tr.win.from) && !r.At.After(tr.win.to)) {
			out = append(out, r)
		}
	}
	return out
}

func (tr truth) Holds(device string) string {
	d := tr.f.Device(device)
	if d == nil {
		return ""
	}
	return hex.EncodeToString(d.SettingsHash())
}

// checkTruth fails the test on any disagreement between the job's report and
// the devices' ground truth.
func checkTruth(t *testing.T, w *scenario.World, j *grouprestore.Job, win window, expect map[string]scenario.Expectation) {
	t.Helper()
	tr := truth{w.Fleet, win}
	ms := scenario.Check(j.ID(), j.Devices(), expect, tr)
	// Check trusts a restored device that holds the right settings; the
	// ground truth must also show the write (CoAP writes are attributed by time).
	for _, o := range j.Devices() {
		if o.State == grouprestore.Restored && len(tr.writes(o.Device, j.ID())) == 0 {
			ms = append(ms, scenario.Mismatch{Device: o.Device, Detail: "reported restored, but the device's log has no write from the job"})
		}
	}
	if len(ms) > 0 {
		t.Errorf("job %s: %d ground-truth mismatches; first ones:\n%s", j.ID(), len(ms), lines(ms[:min(10, len(ms))]))
	}
}

// checkReferencesUntouched fails the test if any reference device (the model
// house) received a write.
func checkReferencesUntouched(t *testing.T, w *scenario.World) {
	t.Helper()
	for _, d := range w.Devices {
		if d.Reference {
			if log := w.Fleet.Device(d.ID).Log(); len(log) > 0 {
				t.Errorf("reference device %s was written %d times: %+v", d.ID, len(log), log[0])
			}
		}
	}
}

// checkStates compares every device's final state with want and the job's
// counts with want's; reasons are shown for the devices that differ.
func checkStates(t *testing.T, p grouprestore.Progress, outs []grouprestore.DeviceOutcome, want map[string]grouprestore.State) {
	t.Helper()
	var bad []string
	for _, o := range outs {
		if w, ok := want[o.Device]; !ok {
			bad = append(bad, fmt.Sprintf("%s: %s, but no state was expected for it", o.Device, o.State))
		} else if o.State != w {
			bad = append(bad, fmt.Sprintf("%s: %s, want %s (%s)", o.Device, o.State, w, o.Reason))
		}
	}
	if len(outs) != len(want) {
		bad = append(bad, fmt.Sprintf("%d outcomes for %d expected devices", len(outs), len(want)))
	}
	if len(bad) > 0 {
		t.Errorf("%d devices in the wrong state; first ones:\n%s", len(bad), strings.Join(bad[:min(10, len(bad))], "\n"))
	}
	if got, exp := nonZero(p.Counts), countOf(want); !maps.Equal(got, exp) {
		t.Errorf("counts %v, want %v", got, exp)
	}
}

func countOf(want map[string]grouprestore.State) map[grouprestore.State]int {
	c := map[grouprestore.State]int{}
	for _, s := range want {
		c[s]++
	}
	return c
}

func nonZero(c map[grouprestore.State]int) map[grouprestore.State]int {
	out := map[grouprestore.State]int{}
	for s, n := range c {
		if n != 0 {
			out[s] = n
		}
	}
	return out
}

// wantFromOracle is what each device of a target group must end in when the
// only faults are devices that never come online (offline), late joiners
// that come online within the job's offline time-to-live, and devices that
// refuse settings (rejected) or store a corrupted copy (failed) when written.
func wantFromOracle(w *scenario.World, expect map[string]scenario.Expectation) map[string]grouprestore.State {
	want := map[string]grouprestore.State{}
	for _, d := range w.Devices {
		e, ok := expect[d.ID]
		if !ok {
			continue
		}
		want[d.ID] = e.State
		switch {
		case d.Faults.Offline:
			want[d.ID] = grouprestore.Offline
		case e.State != grouprestore.Restored:
		case d.Faults.Reject:
			want[d.ID] = grouprestore.Rejected
		case d.Faults.Corrupt:
			want[d.ID] = grouprestore.Failed
		}
	}
	return want
}

// devicesOf lists the devices of a group with a fault.
func devicesOf(w *scenario.World, group string, pick func(devicesim.DeviceFaults) bool) []string {
	var out []string
	for _, d := range w.Devices {
		if d.Group == group && pick(d.Faults) {
			out = append(out, d.ID)
		}
	}
	sort.Strings(out)
	return out
}

func byDevice(outs []grouprestore.DeviceOutcome) map[string]grouprestore.DeviceOutcome {
	m := make(map[string]grouprestore.DeviceOutcome, len(outs))
	for _, o := range outs {
		m[o.Device] = o
	}
	return m
}

func lines[T fmt.Stringer](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = "  " + x.String()
	}
	return strings.Join(s, "\n")
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, ctx context.Context, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
