package fleettests

import (
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/devicesim"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/scenario"
)

// regionPolicy matches offices by region as well as by climate (the zone).
const regionPolicy = "equal(manufacturer, product, model, region, zone)"

// TestOfficesWorldwide restores the settings of model offices, tuned by region
// and climate, to new offices in three regions.
//
// A model office has two HVAC controllers and four lighting controllers with
// identical tags, so with every device of the model offices backed up, each
// office device matches several backups equally: the restore must write
// nothing and say so (ambiguous). The facilities team then backs up one device
// of each kind per model office and restores with a policy that also compares
// the region: every office device gets its region's and climate's settings.
func TestOfficesWorldwide(t *testing.T) {
	spec := loadFleet(t, "../examples/fleets/offices.yaml")
	scenario.ScaleTargets(spec, sites(8, 60))
	ctx := testContext(t, 5*time.Minute)
	w := startWorld(t, ctx, spec)
	// Late joiners (some access controllers) come up within seconds; wait for
	// them so every device but the offline ones answers.
	eventually(t, ctx, time.Minute, "late joiners to come online", func() bool { return w.Fleet.Stats().Waiting == 0 })
	targets := w.TargetGroups()
	if len(targets) != 3 {
		t.Fatalf("target groups %v, want three regions", targets)
	}
	ro := grouprestore.Rollout{Timeout: time.Second, Retries: 1}

	t.Run("every model device backed up: ambiguous, nothing written", func(t *testing.T) {
		target := targets[0]
		expect := w.Expect(target)
		want := wantFromOracle(w, expect)
		if c := countOf(want); c[grouprestore.Ambiguous] == 0 || c[grouprestore.Restored] != 0 {
			t.Fatalf("the oracle expects %v; this case is about duplicates in the model offices", c)
		}
		j, p, win := run(t, ctx, w.Server.Engine, restoreSpec(w, target, ro))
		checkStates(t, p, j.Devices(), want)
		checkTruth(t, w, j, win, expect)
		for _, o := range j.Devices() {
			if o.State == grouprestore.Ambiguous && !strings.Contains(strings.ToLower(o.Reason), "ambiguous") && !strings.Contains(o.Reason, "equally") {
				t.Errorf("%s: an ambiguous outcome should explain itself: %q", o.Device, o.Reason)
				break
			}
		}
	})

	refs := oneOfEachKind(w)
	const refGroup, backupGroup = "office-references", "Office Backups by Region and Climate"
	if err := w.Server.Catalog.CreateGroup(refGroup, catalog.Group{Kind: catalog.GroupDevices}); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(refs))
	for i, d := range refs {
		ids[i] = d.ID
	}
	if err := w.Server.Catalog.AddMembers(refGroup, ids); err != nil {
		t.Fatal(err)
	}
	if _, p, _ := run(t, ctx, w.Server.Engine, grouprestore.Spec{Kind: grouprestore.KindBackup, Source: refGroup, Target: backupGroup}); p.Counts[grouprestore.BackedUp] != len(refs) {
		t.Fatalf("backup of one device per kind: %v, want %d backed up", p.Counts, len(refs))
	}

	for _, target := range targets {
		t.Run("by region and climate/"+target, func(t *testing.T) {
			expect := expectByKeys(w, refs, target, []string{"manufacturer", "product", "model", "region", "zone"}, truth{f: w.Fleet})
			want := wantFromOracle(w, expect)
			if c := countOf(want); c[grouprestore.Restored] == 0 || c[grouprestore.Ambiguous]+c[grouprestore.NoMatch] != 0 {
				t.Fatalf("the oracle expects %v: every office device should have exactly one backup", c)
			}
			j, p, win := run(t, ctx, w.Server.Engine, grouprestore.Spec{Kind: grouprestore.KindRestore, Source: backupGroup, Target: target, Policy: regionPolicy, Rollout: ro})
			if p.State != grouprestore.JobDone {
				t.Errorf("job ended %s (%s)", p.State, p.Reason)
			}
			checkStates(t, p, j.Devices(), want)
			checkTruth(t, w, j, win, expect)
		})
	}
	checkReferencesUntouched(t, w)
}

// oneOfEachKind returns the first device of each type in every model office.
func oneOfEachKind(w *scenario.World) []devicesim.DeviceInfo {
	seen := map[string]bool{}
	var out []devicesim.DeviceInfo
	for _, d := range w.Devices {
		if k := d.Site + "\x00" + d.Type; d.Reference && !seen[k] {
			seen[k] = true
			out = append(out, d)
		}
	}
	return out
}

// expectByKeys is an oracle for a policy of equality keys, written from the
// policy's definition and independent of package tagmatch: a device of group
// gets the settings of the one reference whose tag has the same value for
// every key, nothing if none or several do.
func expectByKeys(w *scenario.World, refs []devicesim.DeviceInfo, group string, keys []string, tr truth) map[string]scenario.Expectation {
	key := func(d devicesim.DeviceInfo) string {
		var b strings.Builder
		for _, k := range keys {
			v, _ := d.Tag.Get(k)
			b.WriteString(k + "=" + v + "\x00")
		}
		return b.String()
	}
	byKey := map[string][]devicesim.DeviceInfo{}
	for _, r := range refs {
		byKey[key(r)] = append(byKey[key(r)], r)
	}
	out := map[string]scenario.Expectation{}
	for _, d := range w.Devices {
		if d.Group != group || d.Reference {
			continue
		}
		e := scenario.Expectation{Device: d.ID}
		switch rs := byKey[key(d)]; len(rs) {
		case 0:
			e.State = grouprestore.NoMatch
		case 1:
			e.State, e.Want, e.From = grouprestore.Restored, tr.Holds(rs[0].ID), rs[0].ID
		default:
			e.State = grouprestore.Ambiguous
		}
		out[d.ID] = e
	}
	return out
}
