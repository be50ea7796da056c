package fleettests

import (
	"context"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/grouprestore"
)

// TestNewestBackupWins retunes a model-house device after its first backup
// and backs the model house up again: the restore must write the newest
// settings, and the devices must hold them, not the first backup's.
func TestNewestBackupWins(t *testing.T) {
	spec := loadFleet(t, "testdata/rollout.yaml")
	ctx := testContext(t, 2*time.Minute)
	w := startWorld(t, ctx, spec) // first backup
	var ref string
	for _, d := range w.Devices {
		if d.Reference && d.Type == "thermostat" {
			ref = d.ID
			break
		}
	}
	dev := w.Fleet.Device(ref)
	before := (truth{f: w.Fleet}).Holds(ref)
	s := dev.CurrentSettings()
	s["setpoint_c"] = 19.5
	s["retuned"] = true
	if err := dev.Apply(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if after := (truth{f: w.Fleet}).Holds(ref); after == before {
		t.Fatalf("retuning %s did not change its settings hash", ref)
	}
	if _, err := w.BackupReferences(ctx); err != nil {
		t.Fatal(err)
	}
	expect := w.Expect("homes") // the oracle reads the references' settings now
	n := 0
	for _, e := range expect {
		if e.From == ref {
			n++
		}
	}
	if n == 0 {
		t.Fatalf("no home matches the retuned %s", ref)
	}
	j, p, win := run(t, ctx, w.Server.Engine, restoreSpec(w, "homes", grouprestore.Rollout{Timeout: time.Second, Retries: 1}))
	checkStates(t, p, j.Devices(), wantFromOracle(w, expect))
	checkTruth(t, w, j, win, expect)
	t.Logf("%d homes got %s's retuned settings", n, ref)
}
