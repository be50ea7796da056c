package grouprestore

import (
	"context"
	"testing"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/tagmatch"
)

func panelTag() tagmatch.Tag {
	return tagmatch.Tag{{Key: "manufacturer", Value: "Acme Corp."}, {Key: "product", Value: "security panel"}, {Key: "model", Value: "sp-9"}, {Key: "zone", Value: "South"}}
}

func thermometerTag() tagmatch.Tag {
	return tagmatch.Tag{{Key: "manufacturer", Value: "Thermo Ltd."}, {Key: "product", Value: "thermometer"}, {Key: "model", Value: "t1"}, {Key: "zone", Value: "South"}}
}

var panelSettings = agent.Settings{"alarm_code": "4711", "armed": true}

// register sets the tag a group member is registered with.
func (f *fleet) register(group, id string, tag tagmatch.Tag) {
	for i, t := range f.dir[group] {
		if t.ID == id {
			f.dir[group][i].Tag = tag
			return
		}
	}
	f.t.Fatalf("no member %s in %s", id, group)
}

// TestLyingDeviceEndsTagMismatch: a device registered as a thermometer of
// another maker claims the security panel's tag. It must end tag-mismatch
// with nothing stored or written, while honest devices go on.
func TestLyingDeviceEndsTagMismatch(t *testing.T) {
	cases := []struct {
		name     string
		kind     Kind
		identity []string
		liarTag  tagmatch.Tag // the liar's registered tag
		want     State        // the liar's final state
	}{
		{name: "restore", kind: KindRestore, liarTag: thermometerTag(), want: TagMismatch},
		{name: "backup", kind: KindBackup, liarTag: thermometerTag(), want: TagMismatch},
		{name: "restore, same model, other maker, identity keys model only", kind: KindRestore, identity: []string{"Model"},
			liarTag: tagmatch.Tag{{Key: "manufacturer", Value: "Thermo Ltd."}, {Key: "model", Value: "sp-9"}}, want: Restored},
		{name: "restore, registered without a tag", kind: KindRestore, liarTag: nil, want: Restored},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := modelHouse(t, 6)
			f.cat.add(t, "model-house", "ref-panel", panelTag(), panelSettings)
			for id, d := range f.devices {
				f.register("homes", id, d.tag)
			}
			liar := f.device("homes", "home-liar", panelTag(), factory)
			f.register("homes", "home-liar", tc.liarTag)
			e := f.engine()
			defer e.Close()
			spec := restoreSpec(Rollout{Concurrency: 3})
			spec.Identity = tc.identity
			if tc.kind == KindBackup {
				spec = Spec{Kind: KindBackup, Source: "homes", Target: "homes-backup", Identity: tc.identity}
			}
			j, err := e.Start(context.Background(), spec)
			if err != nil {
				t.Fatal(err)
			}
			p := wait(t, j)
			honest := Restored
			if tc.kind == KindBackup {
				honest = BackedUp
			}
			for _, o := range j.Devices() {
				want := honest
				if o.Device == "home-liar" {
					want = tc.want
				}
				if o.State != want {
					t.Errorf("%s: %s (%s), want %s", o.Device, o.State, o.Reason, want)
				}
			}
			if p.State != JobDone {
				t.Errorf("job %s (%s)", p.State, p.Reason)
			}
			stored := f.cat.jobPieces(j.ID(), "snapshot")
			if tc.kind == KindBackup {
				stored = f.cat.jobPieces(j.ID(), "settings")
			}
			mismatches := e.Stats().TagMismatches
			if tc.want != TagMismatch {
				if mismatches != 0 {
					t.Errorf("%d tag mismatches counted, want 0", mismatches)
				}
				return
			}
			if len(liar.applied) != 0 {
				t.Errorf("the liar was written %v", liar.applied)
			}
			if stored["home-liar"] != 0 {
				t.Errorf("%d pieces stored for the liar", stored["home-liar"])
			}
			if mismatches != 1 || p.Counts[TagMismatch] != 1 {
				t.Errorf("tag mismatches: %d counted, %d in the job's counts; want 1", mismatches, p.Counts[TagMismatch])
			}
		})
	}
}

func TestDryRunShowsTagMismatch(t *testing.T) {
	f := modelHouse(t, 2)
	f.cat.add(t, "model-house", "ref-panel", panelTag(), panelSettings)
	f.device("homes", "home-liar", panelTag(), factory)
	f.register("homes", "home-liar", thermometerTag())
	e := f.engine()
	defer e.Close()
	plan, err := e.Plan(context.Background(), restoreSpec(Rollout{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, pe := range plan {
		if want := map[bool]State{true: TagMismatch, false: WouldRestore}[pe.Device == "home-liar"]; pe.State != want {
			t.Errorf("%s: %s (%s), want %s", pe.Device, pe.State, pe.Reason, want)
		}
	}
}

func TestBadIdentityKeysAreRefused(t *testing.T) {
	f := modelHouse(t, 1)
	e := f.engine()
	defer e.Close()
	spec := restoreSpec(Rollout{})
	spec.Identity = []string{"model", "a=b"}
	if _, err := e.Start(context.Background(), spec); err == nil {
		t.Fatal("a job with a bad identity key started")
	}
	if _, err := New(Options{JournalPath: t.TempDir() + "/j.db", CreateJournal: true, Catalog: f.cat, Directory: f.dir,
		Transports: map[string]agent.Transport{"mqtt": f.tr}, IdentityKeys: []string{"model", "Model"}}); err == nil {
		t.Fatal("an engine with a duplicate identity key was made")
	}
}
