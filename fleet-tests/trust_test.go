package fleettests

import (
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/devicesim"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/scenario"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// TestLyingDeviceGetsNothing is issue 11's finding 3: a device registered as
// a thermometer of another maker claims a security panel's tag. One such
// device per transport (MQTT and CoAP) is re-registered so; the restore must
// end each tag-mismatch with nothing written (the device's own log) and no
// snapshot stored, while every honest device is restored; a backup of the
// group stores nothing for them either.
func TestLyingDeviceGetsNothing(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	w := startWorld(t, ctx, loadFleet(t, "testdata/trust.yaml"))
	thermometer, err := tagmatch.ParseKV("manufacturer=Thermo Ltd.; product=thermometer; model=T1; zone=South")
	if err != nil {
		t.Fatal(err)
	}
	liars := map[string]bool{}
	for _, transport := range []string{devicesim.TransportMQTT, devicesim.TransportCoAP} {
		for _, d := range w.Devices {
			if d.Group == "homes" && d.Transport == transport && d.Type != "thermometer" {
				liars[d.ID] = true
				reregister(t, w, d.ID, thermometer)
				break
			}
		}
	}
	if len(liars) != 2 {
		t.Fatalf("the fleet has %d panels to make liars of, want one per transport", len(liars))
	}
	expect := w.Expect("homes")
	want := map[string]grouprestore.State{}
	for id, e := range expect {
		want[id] = e.State
		if liars[id] {
			want[id] = grouprestore.TagMismatch
			expect[id] = scenario.Expectation{Device: id, State: grouprestore.TagMismatch}
		}
	}
	if n := countOf(want)[grouprestore.Restored]; n != 34 {
		t.Fatalf("the oracle expects %d devices restored, want 34 (36 homes' devices, 2 liars)", n)
	}
	before := w.Server.Engine.Stats().TagMismatches

	j, p, win := run(t, ctx, w.Server.Engine, restoreSpec(w, "homes", grouprestore.Rollout{Timeout: 2 * time.Second, Retries: 1}))
	if p.State != grouprestore.JobDone {
		t.Errorf("job ended %s (%s)", p.State, p.Reason)
	}
	checkStates(t, p, j.Devices(), want)
	checkTruth(t, w, j, win, expect)
	checkReferencesUntouched(t, w)
	for id := range liars {
		if log := w.Fleet.Device(id).Log(); len(log) > 0 {
			t.Errorf("liar %s was written %d times", id, len(log))
		}
		checkNoPieces(t, w, id, j.ID())
	}
	if got := w.Server.Engine.Stats().TagMismatches - before; got != 2 {
		t.Errorf("%d tag mismatches counted, want 2", got)
	}

	b, bp, _ := run(t, ctx, w.Server.Engine, grouprestore.Spec{Kind: grouprestore.KindBackup, Source: "homes", Target: "homes backup"})
	if bp.Counts[grouprestore.TagMismatch] != 2 || bp.Counts[grouprestore.BackedUp] != 34 {
		t.Errorf("backup of homes: %v, want 34 backed-up and 2 tag-mismatch", bp.Counts)
	}
	for id := range liars {
		checkNoPieces(t, w, id, b.ID())
	}
}

// reregister changes the tag a device is registered with.
func reregister(t *testing.T, w *scenario.World, id string, tag tagmatch.Tag) {
	t.Helper()
	d, err := w.Server.Catalog.Device(id)
	if err != nil {
		t.Fatal(err)
	}
	d.Optional[catalog.OptionalTag] = tag.String()
	if err := w.Server.Catalog.PutDevices(t.Context(), []catalog.Device{d}); err != nil {
		t.Fatal(err)
	}
}

// checkNoPieces fails if job stored any piece of device in the catalog.
func checkNoPieces(t *testing.T, w *scenario.World, device, job string) {
	t.Helper()
	ps, err := w.Server.Catalog.Pieces(catalog.Query{Client: device})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.Job == job {
			t.Errorf("job %s stored piece %s (%s) of %s", job, p.ID, p.Type, device)
		}
	}
}
