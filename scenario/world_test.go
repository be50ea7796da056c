package scenario

import (
	"context"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/devicesim"
	"github.com/fleetvault/fleetvault/grouprestore"
)

func TestModelHouseRestoreMatchesGroundTruth(t *testing.T) {
	spec, err := devicesim.Load("../examples/fleets/model-house.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ScaleTargets(spec, 40)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w, err := Start(ctx, Options{Fleet: spec})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.BackupReferences(ctx); err != nil {
		t.Fatal(err)
	}
	j, err := w.Server.Engine.Start(ctx, grouprestore.Spec{Kind: grouprestore.KindRestore, Source: w.BackupGroup, Target: "new-homes",
		Rollout: grouprestore.Rollout{Timeout: 2 * time.Second, Retries: 1}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := j.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	expect := w.Expect("new-homes")
	if p.Total != len(expect) || p.Counts[grouprestore.Restored] == 0 {
		t.Fatalf("progress %+v for %d expected devices", p, len(expect))
	}
	if ms := Check(j.ID(), j.Devices(), expect, w.Truth()); len(ms) > 0 {
		t.Fatalf("%d ground-truth mismatches, first: %v", len(ms), ms[:min(5, len(ms))])
	}
	t.Logf("%d devices: %v", p.Total, p.Counts)
}
