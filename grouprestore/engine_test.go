package grouprestore

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/tagmatch"
)

var (
	northSettings = agent.Settings{"setpoint": 21.5, "mode": "heat", "schedule": []any{"06:00", "22:00"}}
	southSettings = agent.Settings{"setpoint": 24.0, "mode": "cool", "schedule": []any{"07:00", "23:00"}}
	factory       = agent.Settings{"setpoint": 20.0, "mode": "off"}
)

func hashOf(t *testing.T, s agent.Settings) string {
	t.Helper()
	b, err := agent.EncodeSettings(s)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(agent.Hash(b))
}

// modelHouse backs up a North and a South climate control and adds targets.
func modelHouse(t *testing.T, homes int) *fleet {
	f := newFleet(t)
	f.cat.add(t, "model-house", "ref-north-climate", climate("North"), northSettings)
	f.cat.add(t, "model-house", "ref-south-climate", climate("South"), southSettings)
	for i := 0; i < homes; i++ {
		zone := []string{"North", "South"}[i%2]
		f.device("homes", fmt.Sprintf("home%03d-climate", i), climate(zone), factory)
	}
	return f
}

func restoreSpec(r Rollout) Spec {
	return Spec{Kind: KindRestore, Source: "model-house", Target: "homes", Rollout: r}
}

func TestRestoreMatchesTagsAndVerifies(t *testing.T) {
	f := modelHouse(t, 20)
	unknown := f.device("homes", "home-x-lock", tagmatch.Tag{{Key: "manufacturer", Value: "Other Inc."}, {Key: "product", Value: "lock"}, {Key: "model", Value: "l1"}}, factory)
	e := f.engine()
	defer e.Close()
	j, err := e.Start(context.Background(), restoreSpec(Rollout{Concurrency: 4}))
	if err != nil {
		t.Fatal(err)
	}
	p := wait(t, j)
	if p.State != JobDone || p.Counts[Restored] != 20 || p.Counts[NoMatch] != 1 || p.Done != 21 {
		t.Fatalf("progress = %+v", p)
	}
	for id, d := range f.devices {
		want := map[string]string{"North": hashOf(t, northSettings), "South": hashOf(t, southSettings)}
		zone, _ := d.tag.Get("zone")
		switch {
		case d == unknown:
			if len(d.applied) != 0 {
				t.Errorf("%s: unknown model received settings %v", id, d.applied)
			}
		case len(d.applied) != 1 || d.applied[0] != want[zone]:
			t.Errorf("%s (zone %s): applied %v, want exactly [%s]", id, zone, d.applied, want[zone])
		}
	}
	for _, o := range j.Devices() {
		if o.State == Restored && (o.Snapshot == "" || o.Reason == "") {
			t.Errorf("%s: restored without snapshot or reason: %+v", o.Device, o)
		}
		if o.State == NoMatch && !strings.Contains(o.Reason, "") {
			t.Errorf("%s: no reason", o.Device)
		}
		if _, ok := f.cat.restores[j.ID()+"/"+o.Device]; !ok {
			t.Errorf("%s: no restore history line", o.Device)
		}
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	f := modelHouse(t, 6)
	e := f.engine()
	defer e.Close()
	plan, err := e.Plan(context.Background(), restoreSpec(Rollout{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) != 6 {
		t.Fatalf("plan has %d entries", len(plan))
	}
	for _, pe := range plan {
		if pe.State != WouldRestore || pe.Piece == "" || pe.Reason == "" {
			t.Errorf("plan entry %+v", pe)
		}
	}
	for id, d := range f.devices {
		if len(d.applied) != 0 {
			t.Errorf("%s: dry run wrote %v", id, d.applied)
		}
	}
	if jobs, _ := e.Jobs(); len(jobs) != 0 {
		t.Errorf("dry run journaled jobs: %v", jobs)
	}
	if len(f.cat.pieces) != 2 {
		t.Errorf("dry run stored pieces: %d", len(f.cat.pieces))
	}
}

func TestAmbiguousWritesNothing(t *testing.T) {
	f := newFleet(t)
	tag := climate("North")
	f.cat.add(t, "model-house", "ref-a", tag, northSettings)
	f.cat.add(t, "model-house", "ref-b", tag, southSettings)
	d := f.device("homes", "home1-climate", tag, factory)
	e := f.engine()
	defer e.Close()
	j, err := e.Start(context.Background(), restoreSpec(Rollout{}))
	if err != nil {
		t.Fatal(err)
	}
	p := wait(t, j)
	if p.Counts[Ambiguous] != 1 || len(d.applied) != 0 {
		t.Fatalf("counts %v, applied %v", p.Counts, d.applied)
	}
}

func TestCanaryAbortsOnFailures(t *testing.T) {
	f := modelHouse(t, 40)
	for _, d := range f.devices {
		d.reject = true
	}
	e := f.engine()
	defer e.Close()
	j, err := e.Start(context.Background(), restoreSpec(Rollout{Concurrency: 2, Canary: 5, MaxFailureShare: 0.2, MinFailures: 3}))
	if err != nil {
		t.Fatal(err)
	}
	p := wait(t, j)
	if p.State != JobAborted || !strings.Contains(p.Reason, "failed") {
		t.Fatalf("state %s reason %q", p.State, p.Reason)
	}
	if p.Counts[Rejected] > 5 || p.Counts[Skipped] < 35 || p.Done != 40 {
		t.Fatalf("counts %v: the abort should stop the rollout within the canary", p.Counts)
	}
}

func TestNoMatchThresholdAborts(t *testing.T) {
	f := newFleet(t)
	f.cat.add(t, "model-house", "ref-north", climate("North"), northSettings)
	for i := 0; i < 30; i++ {
		f.device("homes", fmt.Sprintf("h%02d", i), climate("West"), factory)
	}
	e := f.engine()
	defer e.Close()
	j, _ := e.Start(context.Background(), restoreSpec(Rollout{Concurrency: 1, MaxNoMatchShare: 0.5, MinNoMatches: 5}))
	p := wait(t, j)
	if p.State != JobAborted || p.Counts[NoMatch] < 5 || p.Counts[NoMatch] > 6 || p.Counts[Skipped] == 0 {
		t.Fatalf("state %s counts %v", p.State, p.Counts)
	}
}

func TestWavesAndRateAreHonoured(t *testing.T) {
	r := Rollout{Canary: 3, WaveSize: 10}
	if got := fmt.Sprint(r.waves(25)); got != "[3 10 10 2]" {
		t.Errorf("waves(25) = %s", got)
	}
	if got := fmt.Sprint(Rollout{CanaryShare: 0.1}.waves(50)); got != "[5 45]" {
		t.Errorf("canary share waves = %s", got)
	}
	if got := fmt.Sprint(Rollout{}.waves(7)); got != "[7]" {
		t.Errorf("no canary waves = %s", got)
	}
	for _, bad := range []Rollout{{Concurrency: -1}, {CanaryShare: 2}, {MaxFailureShare: -0.1}, {Rate: -1}} {
		if bad.Validate() == nil {
			t.Errorf("%+v validated", bad)
		}
	}
}

func TestCancelSkipsTheRest(t *testing.T) {
	f := modelHouse(t, 30)
	for id := range f.devices {
		f.tr.delay[id] = 20 * time.Millisecond
	}
	e := f.engine()
	defer e.Close()
	j, _ := e.Start(context.Background(), restoreSpec(Rollout{Concurrency: 1}))
	checkFor(t, 10*time.Second, func() bool { return j.Progress().Done >= 2 }, "two devices done")
	j.Cancel()
	p := wait(t, j)
	if p.State != JobCancelled || p.Counts[Skipped] == 0 || p.Counts[Restored] == 0 || p.Done != 30 {
		t.Fatalf("state %s counts %v", p.State, p.Counts)
	}
	for _, o := range j.Devices() {
		if o.State == Skipped && len(f.devices[o.Device].applied) != 0 {
			t.Errorf("%s skipped but written", o.Device)
		}
	}
}

func TestPauseAndResume(t *testing.T) {
	f := modelHouse(t, 10)
	for id := range f.devices {
		f.tr.delay[id] = 10 * time.Millisecond
	}
	e := f.engine()
	defer e.Close()
	j, _ := e.Start(context.Background(), restoreSpec(Rollout{Concurrency: 1}))
	j.Pause()
	if s := j.Progress().State; s != JobPaused {
		t.Fatalf("state after pause = %s", s)
	}
	time.Sleep(50 * time.Millisecond) // let any device in flight finish; nothing new may start
	n := j.Progress().Done
	time.Sleep(50 * time.Millisecond)
	if m := j.Progress().Done; m != n {
		t.Fatalf("devices kept finishing while paused: %d then %d", n, m)
	}
	j.Resume()
	if p := wait(t, j); p.Counts[Restored] != 10 {
		t.Fatalf("counts %v", p.Counts)
	}
}

func TestOfflineDeviceComesBackWithinTTL(t *testing.T) {
	f := modelHouse(t, 4)
	f.tr.setOffline("home000-climate", true)
	f.tr.setOffline("home001-climate", true)
	e := f.engine()
	defer e.Close()
	j, _ := e.Start(context.Background(), restoreSpec(Rollout{Timeout: 50 * time.Millisecond, Retries: 1, Backoff: time.Millisecond, OfflineTTL: 3 * time.Second}))
	checkFor(t, 10*time.Second, func() bool { return j.Progress().Counts[Restored] == 2 }, "the online devices restored")
	f.tr.setOffline("home000-climate", false) // comes online and announces itself
	p := wait(t, j)
	if p.Counts[Restored] != 3 || p.Counts[Offline] != 1 {
		t.Fatalf("counts %v", p.Counts)
	}
	for _, o := range j.Devices() {
		if o.Device == "home001-climate" && (o.State != Offline || !strings.Contains(o.Reason, "time-to-live")) {
			t.Errorf("home001: %+v", o)
		}
	}
}

func TestRetriesThenRestores(t *testing.T) {
	f := modelHouse(t, 2)
	f.tr.failN["home000-climate"] = 2
	e := f.engine()
	defer e.Close()
	j, _ := e.Start(context.Background(), restoreSpec(Rollout{Timeout: 30 * time.Millisecond, Retries: 3, Backoff: time.Millisecond}))
	p := wait(t, j)
	if p.Counts[Restored] != 2 {
		t.Fatalf("counts %v", p.Counts)
	}
	for _, o := range j.Devices() {
		if o.Device == "home000-climate" && o.Attempts < 4 {
			t.Errorf("attempts = %d, want at least 4 (2 failed probes, probe, write)", o.Attempts)
		}
	}
}

func TestCorruptAcknowledgementFails(t *testing.T) {
	f := modelHouse(t, 2)
	f.devices["home001-climate"].corrupt = true
	e := f.engine()
	defer e.Close()
	j, _ := e.Start(context.Background(), restoreSpec(Rollout{}))
	p := wait(t, j)
	if p.Counts[Restored] != 1 || p.Counts[Failed] != 1 {
		t.Fatalf("counts %v", p.Counts)
	}
	for _, o := range j.Devices() {
		if o.Device == "home001-climate" && !strings.Contains(o.Reason, "verification failed") {
			t.Errorf("reason %q", o.Reason)
		}
	}
}

func TestUndoRestoresSnapshots(t *testing.T) {
	f := modelHouse(t, 6)
	e := f.engine()
	defer e.Close()
	j, _ := e.Start(context.Background(), restoreSpec(Rollout{}))
	wait(t, j)
	u, err := e.Start(context.Background(), Spec{Kind: KindUndo, Source: j.ID()})
	if err != nil {
		t.Fatal(err)
	}
	if p := wait(t, u); p.Counts[Restored] != 6 {
		t.Fatalf("undo counts %v", p.Counts)
	}
	for id, d := range f.devices {
		if got, want := hashOf(t, d.current()), hashOf(t, factory); got != want {
			t.Errorf("%s after undo holds %s, want the factory settings %s", id, got, want)
		}
	}
}

func TestGroupBackupStoresEveryMember(t *testing.T) {
	f := newFleet(t)
	f.device("model-house-north", "ref-n-climate", climate("North"), northSettings)
	f.device("model-house-north", "ref-n-light", tagmatch.Tag{{Key: "manufacturer", Value: "Lumo"}, {Key: "product", Value: "lighting"}, {Key: "zone", Value: "North"}}, agent.Settings{"scene": "evening"})
	e := f.engine()
	defer e.Close()
	j, err := e.Start(context.Background(), Spec{Kind: KindBackup, Source: "model-house-north", Target: "north-backup"})
	if err != nil {
		t.Fatal(err)
	}
	if p := wait(t, j); p.Counts[BackedUp] != 2 {
		t.Fatalf("counts %v", p.Counts)
	}
	cands, _ := f.cat.Candidates(context.Background(), "north-backup")
	if len(cands) != 2 {
		t.Fatalf("candidates %+v", cands)
	}
	for _, c := range cands {
		if c.Client == "ref-n-climate" && (c.Hash != hashOf(t, northSettings) || !c.Tag.Equal(climate("North"))) {
			t.Errorf("climate piece %+v", c)
		}
	}
}

func TestResumeAfterEngineStops(t *testing.T) {
	f := modelHouse(t, 40)
	for id := range f.devices {
		f.tr.delay[id] = 5 * time.Millisecond
	}
	e := f.engine()
	j, _ := e.Start(context.Background(), restoreSpec(Rollout{Concurrency: 2}))
	checkFor(t, 10*time.Second, func() bool { return j.Progress().Done >= 5 }, "five devices done")
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	before := j.Progress().Done
	if before == 40 {
		t.Skip("the job finished before the engine stopped")
	}
	e2 := f.engine()
	defer e2.Close()
	jobs, err := e2.Resume(context.Background())
	if err != nil || len(jobs) != 1 || jobs[0].ID() != j.ID() {
		t.Fatalf("resume: %v %v", jobs, err)
	}
	p := wait(t, jobs[0])
	if p.State != JobDone || p.Counts[Restored] != 40 {
		t.Fatalf("after resume: %+v", p)
	}
	for id, d := range f.devices {
		seen := map[string]bool{}
		for _, h := range d.applied {
			seen[h] = true
		}
		if len(seen) != 1 {
			t.Errorf("%s received %d different settings from one job: %v", id, len(seen), d.applied)
		}
	}
}

func TestStartRejectsBadSpecs(t *testing.T) {
	f := modelHouse(t, 1)
	e := f.engine()
	defer e.Close()
	for name, spec := range map[string]Spec{
		"unknown backup group": {Kind: KindRestore, Source: "nope", Target: "homes"},
		"unknown device group": {Kind: KindRestore, Source: "model-house", Target: "nope"},
		"bad rollout":          {Kind: KindRestore, Source: "model-house", Target: "homes", Rollout: Rollout{Concurrency: -3}},
		"undo of unknown job":  {Kind: KindUndo, Source: "j-nope"},
		"backup without name":  {Kind: KindBackup, Source: "homes"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := e.Start(context.Background(), spec); err == nil {
				t.Fatal("started")
			}
		})
	}
}

func TestRecordCarriesTheJournalTimes(t *testing.T) {
	f := modelHouse(t, 2)
	e := f.engine()
	defer e.Close()
	j, err := e.Start(context.Background(), restoreSpec(Rollout{}))
	if err != nil {
		t.Fatal(err)
	}
	wait(t, j)
	rec := j.Record()
	if rec.ID != j.ID() || rec.State != JobDone || rec.Created == 0 || rec.Updated < rec.Created || rec.Total != 2 || rec.Candidates != nil {
		t.Fatalf("record %+v", rec)
	}
}
