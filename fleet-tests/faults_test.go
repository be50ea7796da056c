package fleettests

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/devicesim"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/scenario"
)

// TestFaultyFleet restores to thermostats that misbehave and checks that each
// ends in the state its fault calls for, and that none was sent wrong or
// differing settings:
//
//	never online, drops requests       offline
//	slower than the timeout            offline, or failed after retries; never restored
//	refuses settings                   rejected
//	corrupt acknowledgement            failed: "verification failed"
//	reboots during the write           restored after a retry, or failed
//	comes online late (shipped fleet)  restored, or offline if too late
func TestFaultyFleet(t *testing.T) {
	cases := []struct {
		name  string
		fleet string
		homes int
		long  bool
	}{
		{name: "small faults", fleet: "testdata/faults.yaml", homes: sites(200, 1000)},
		{name: "shipped faults", fleet: "../examples/fleets/faults.yaml", homes: 1000, long: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.long && testing.Short() {
				t.Skip("1,000 faulty homes: skipped under -short")
			}
			spec := loadFleet(t, tc.fleet)
			scenario.ScaleTargets(spec, tc.homes)
			ctx := testContext(t, 5*time.Minute)
			w := startWorld(t, ctx, spec)
			expect := w.Expect("homes")
			accept := map[string][]grouprestore.State{}
			seen := map[string]int{}
			for _, d := range w.Devices {
				if _, ok := expect[d.ID]; ok {
					accept[d.ID] = faultStates(d.Faults)
					for _, f := range faultNames(d.Faults) {
						seen[f]++
					}
				}
			}
			for _, f := range []string{"offline", "slow", "drop", "reject", "corrupt", "reboot"} {
				if seen[f] == 0 {
					t.Fatalf("no device has the %s fault (faults %v): the fleet is too small for this test", f, seen)
				}
			}

			j, p, win := run(t, ctx, w.Server.Engine, restoreSpec(w, "homes",
				grouprestore.Rollout{Timeout: time.Second, Retries: 2, Backoff: 200 * time.Millisecond}))
			if p.State != grouprestore.JobDone {
				t.Errorf("job ended %s (%s), want done", p.State, p.Reason)
			}
			outs := j.Devices()
			checkStatesIn(t, p, outs, accept)
			checkTruth(t, w, j, win, expect)
			checkReferencesUntouched(t, w)
			checkFaultDetails(t, w, outs, truth{w.Fleet, win}, j.ID())
			t.Logf("faults %v; outcome %v", seen, p.Counts)
		})
	}
}

// faultStates are the final states a device with these faults may end in.
func faultStates(f devicesim.DeviceFaults) []grouprestore.State {
	switch {
	case f.Offline, f.Drop:
		return []grouprestore.State{grouprestore.Offline}
	case f.Slow:
		return []grouprestore.State{grouprestore.Offline, grouprestore.Failed}
	}
	var s []grouprestore.State
	switch {
	case f.Reject:
		s = append(s, grouprestore.Rejected)
	case f.Corrupt:
		s = append(s, grouprestore.Failed)
	default:
		s = append(s, grouprestore.Restored)
	}
	if f.Reboot { // the retries may all fall within the reboot
		s = append(s, grouprestore.Failed)
	}
	if f.LateAfter > 0 { // restored if it comes online within the retries
		s = append(s, grouprestore.Offline)
	}
	return s
}

func faultNames(f devicesim.DeviceFaults) []string {
	var out []string
	for _, x := range []struct {
		on   bool
		name string
	}{{f.Offline, "offline"}, {f.LateAfter > 0, "late"}, {f.Slow, "slow"}, {f.Drop, "drop"}, {f.Reject, "reject"}, {f.Corrupt, "corrupt"}, {f.Reboot, "reboot"}} {
		if x.on {
			out = append(out, x.name)
		}
	}
	return out
}

// checkStatesIn checks every device ended in one of its accepted states, and
// that the job's counts agree with its devices' outcomes.
func checkStatesIn(t *testing.T, p grouprestore.Progress, outs []grouprestore.DeviceOutcome, accept map[string][]grouprestore.State) {
	t.Helper()
	var bad []string
	counts := map[grouprestore.State]int{}
	for _, o := range outs {
		counts[o.State]++
		if ok := accept[o.Device]; !slices.Contains(ok, o.State) {
			bad = append(bad, fmt.Sprintf("%s: %s, want one of %v (%s)", o.Device, o.State, ok, o.Reason))
		}
	}
	if len(outs) != len(accept) {
		bad = append(bad, fmt.Sprintf("%d outcomes for %d devices", len(outs), len(accept)))
	}
	if len(bad) > 0 {
		t.Errorf("%d devices in the wrong state; first ones:\n%s", len(bad), strings.Join(bad[:min(10, len(bad))], "\n"))
	}
	if got := nonZero(p.Counts); fmt.Sprint(got) != fmt.Sprint(counts) || p.Done != p.Total || p.Total != len(outs) {
		t.Errorf("progress %v (%d of %d done) disagrees with the devices' outcomes %v (%d)", got, p.Done, p.Total, counts, len(outs))
	}
}

// checkFaultDetails checks what the states alone do not say: why corrupt and
// slow devices failed, that rebooting devices really rebooted, and that
// devices that never answered were never written.
func checkFaultDetails(t *testing.T, w *scenario.World, outs []grouprestore.DeviceOutcome, tr truth, job string) {
	t.Helper()
	got := byDevice(outs)
	for _, d := range w.Devices {
		o, ok := got[d.ID]
		if !ok {
			continue
		}
		writes := tr.writes(d.ID, job)
		f := d.Faults
		switch {
		case f.Offline || f.Drop || f.Slow:
			if len(writes) > 0 && !f.Slow {
				t.Errorf("%s never answers, yet was written: %+v", d.ID, writes[0])
			}
		case o.State == grouprestore.Offline:
			if len(writes) > 0 {
				t.Errorf("%s is reported offline, yet was written: %+v", d.ID, writes[0])
			}
		case f.Reboot:
			if len(writes) == 0 || !strings.HasPrefix(writes[0].Outcome, "reboot-") {
				t.Errorf("%s should have rebooted on its first write: %+v", d.ID, writes)
			}
			if o.State == grouprestore.Restored && o.Attempts < 2 {
				t.Errorf("%s restored after a reboot in %d attempts", d.ID, o.Attempts)
			}
		case f.Reject:
			if len(writes) == 0 || writes[len(writes)-1].Outcome != devicesim.OutcomeRejected {
				t.Errorf("%s refuses settings, but its log says %+v", d.ID, writes)
			}
		case f.Corrupt:
			if !strings.Contains(o.Reason, "verification failed") {
				t.Errorf("%s stored a corrupted copy: %s, want a reason saying verification failed", d.ID, o)
			}
		}
	}
}
