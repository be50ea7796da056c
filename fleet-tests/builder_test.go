package fleettests

import (
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/devicesim"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/scenario"
)

// TestBuilderModelHouse is the article's builder: the model house's North and
// South devices are backed up as references and group-restored to new homes of
// mixed zones. Unknown hubs get nothing, late joiners are restored once they
// come online within the offline time-to-live, and devices that never come
// up end offline.
func TestBuilderModelHouse(t *testing.T) {
	cases := []struct {
		name      string
		fleet     string
		homes     int
		long      bool // only without -short
		ttl       time.Duration
		wantLate  bool // the fleet surely has late joiners
		wantNoHub bool // ... and unknown hubs
	}{
		{name: "late joiners and unknown hubs", fleet: "testdata/model-house-late.yaml", homes: sites(150, 1000), ttl: 6 * time.Second, wantLate: true, wantNoHub: true},
		{name: "shipped model house", fleet: "../examples/fleets/model-house.yaml", homes: 1000, long: true, ttl: 20 * time.Second, wantLate: true, wantNoHub: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.long && testing.Short() {
				t.Skip("1,000 homes: skipped under -short")
			}
			spec := loadFleet(t, tc.fleet)
			scenario.ScaleTargets(spec, tc.homes)
			ctx := testContext(t, 5*time.Minute)
			w := startWorld(t, ctx, spec)
			late := devicesOf(w, "new-homes", func(f devicesim.DeviceFaults) bool { return f.LateAfter > 0 })
			for _, id := range late {
				if d := w.Fleet.Device(id).Info().Faults.LateAfter; d > tc.ttl-3*time.Second {
					t.Fatalf("late joiner %s comes after %s, too close to the time-to-live %s", id, d, tc.ttl)
				}
			}
			expect := w.Expect("new-homes")
			want := wantFromOracle(w, expect)
			counts := countOf(want)
			if tc.wantLate && len(late) == 0 || tc.wantNoHub && counts[grouprestore.NoMatch] == 0 {
				t.Fatalf("the fleet lacks the faults this test is about: %d late joiners, states %v", len(late), counts)
			}

			j, p, win := run(t, ctx, w.Server.Engine, restoreSpec(w, "new-homes",
				grouprestore.Rollout{Timeout: time.Second, Retries: 1, OfflineTTL: tc.ttl}))
			if p.State != grouprestore.JobDone {
				t.Errorf("job ended %s (%s), want done", p.State, p.Reason)
			}
			outs := j.Devices()
			checkStates(t, p, outs, want)
			checkTruth(t, w, j, win, expect)
			checkReferencesUntouched(t, w)
			got := byDevice(outs)
			for _, id := range late {
				if o := got[id]; o.State != grouprestore.Restored {
					t.Errorf("late joiner %s: %s", id, o)
				}
			}
			t.Logf("%d homes, %d devices, %d late joiners restored: %v", tc.homes, p.Total, len(late), p.Counts)
		})
	}
}
