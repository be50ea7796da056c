package fleettests

import (
	"fmt"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/scenario"
	"github.com/fleetvault/fleetvault/settingsdoc"
)

// TestDrift restores 2,000 thermostats (400 under -short) under a profile keeping their names,
// changes 5% of them (and renames others, which the profile keeps), and
// checks that drift reports exactly the changed devices with the changed
// keys, that remediation brings them back, and that a second drift finds none.
func TestDrift(t *testing.T) {
	spec := loadFleet(t, "testdata/versions.yaml")
	n := sites(400, 2000)
	scenario.ScaleTargets(spec, n)
	ctx := testContext(t, 5*time.Minute)
	w := startWorld(t, ctx, spec)
	prof := &settingsdoc.Profile{Name: "keep-identity", Keep: []string{"/name", "/network/*"}}
	if err := w.AttachProfile(prof); err != nil {
		t.Fatal(err)
	}
	ro := grouprestore.Rollout{Timeout: 5 * time.Second, Retries: 2}
	rs := restoreSpec(w, "homes", ro)
	rs.Profile = prof
	_, p, _ := run(t, ctx, w.Server.Engine, rs)
	if p.Counts[grouprestore.Restored] != n {
		t.Fatalf("restore: %v", p.Counts)
	}

	var homes []string
	for _, d := range w.Devices {
		if d.Group == "homes" {
			homes = append(homes, d.ID)
		}
	}
	sort.Strings(homes)
	want := map[string][]string{} // drifted device -> changed keys
	for i, id := range homes {
		dev := w.Fleet.Device(id)
		s := dev.CurrentSettings()
		switch {
		case i%20 == 0 && i%40 == 0:
			s["setpoint_c"], want[id] = 12.5, []string{"/setpoint_c"}
		case i%20 == 0:
			s["eco"], s["mode"], want[id] = true, "off", []string{"/eco", "/mode"}
		case i%20 == 7:
			s["name"] = "renamed " + id // kept by the profile: not drift
		default:
			continue
		}
		if err := dev.Apply(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if len(want) != n/20 {
		t.Fatalf("changed %d devices, want 5%% of %d", len(want), n)
	}

	drift := func(t *testing.T) (*grouprestore.Job, map[string][]string) {
		t.Helper()
		j, p, _ := run(t, ctx, w.Server.Engine, grouprestore.Spec{Kind: grouprestore.KindDrift, Target: "homes", Rollout: ro})
		got := map[string][]string{}
		for _, o := range j.Devices() {
			switch o.State {
			case grouprestore.Drifted:
				got[o.Device] = o.Diff.Paths()
			case grouprestore.InSync:
			default:
				t.Errorf("%s: %s: %s", o.Device, o.State, o.Reason)
			}
		}
		if p.Counts[grouprestore.Drifted]+p.Counts[grouprestore.InSync] != n {
			t.Errorf("drift counts %v", p.Counts)
		}
		return j, got
	}
	j, got := drift(t)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("drift found %d devices, want %d; first differences: %v", len(got), len(want), firstDiffs(got, want, 5))
	}
	specs, err := w.Server.Engine.Remediation(j.ID())
	if err != nil || len(specs) != 1 || len(specs[0].Devices) != n/20 {
		t.Fatalf("remediation %v, %v", specs, err)
	}
	rj, rp, _ := run(t, ctx, w.Server.Engine, specs[0])
	if rp.Total != n/20 || rp.Counts[grouprestore.Restored] != n/20 {
		t.Fatalf("remediation %s: %v", rj.ID(), rp.Counts)
	}
	if _, again := drift(t); len(again) != 0 {
		t.Fatalf("after remediation %d devices still drift: %v", len(again), firstDiffs(again, nil, 5))
	}
	if s := w.Fleet.Device(homes[7]).CurrentSettings(); s["name"] != "renamed "+homes[7] {
		t.Fatalf("a kept name was overwritten: %v", s["name"])
	}
}

func firstDiffs(got, want map[string][]string, n int) []string {
	var out []string
	for id := range union(got, want) {
		if !reflect.DeepEqual(got[id], want[id]) {
			out = append(out, fmt.Sprintf("%s: got %v want %v", id, got[id], want[id]))
		}
	}
	sort.Strings(out)
	return out[:min(n, len(out))]
}

func union(a, b map[string][]string) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}
