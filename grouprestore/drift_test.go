package grouprestore

import (
	"context"
	"reflect"
	"sort"
	"testing"
	"time"
)

// CandidatesAsOf lets drift remediation replay a restore as of its time. The
// fake keeps no backup times: its backups all predate every job here.
func (c *memCatalog) CandidatesAsOf(ctx context.Context, group string, _ time.Time) ([]Piece, error) {
	return c.Candidates(ctx, group)
}

func driftStates(t *testing.T, e *Engine, spec Spec) (map[State][]string, map[string][]string) {
	t.Helper()
	j, err := e.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, j)
	states, paths := map[State][]string{}, map[string][]string{}
	for _, o := range j.Devices() {
		states[o.State] = append(states[o.State], o.Device)
		if o.Diff != nil {
			paths[o.Device] = o.Diff.Paths()
		}
	}
	for _, l := range states {
		sort.Strings(l)
	}
	return states, paths
}

func TestDrift(t *testing.T) {
	f, _ := identityFleet(t, 10)
	e := f.engine()
	defer e.Close()
	spec := restoreSpec(Rollout{})
	spec.Profile = &identityProfile
	j, err := e.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, j)
	f.device("homes", "home-new-climate", climate("North"), factory) // never restored

	// After the restore: one device renamed (kept by the profile: no drift),
	// two with their setpoint changed, one with a key added.
	edit := func(id string, fn func(map[string]any)) {
		d := f.devices[id]
		d.mu.Lock()
		fn(d.settings)
		d.mu.Unlock()
	}
	edit("home000-climate", func(s map[string]any) { s["name"] = "kitchen" })
	edit("home001-climate", func(s map[string]any) { s["setpoint"] = 30.0 })
	edit("home002-climate", func(s map[string]any) { s["setpoint"] = 10.0 })
	edit("home003-climate", func(s map[string]any) { s["eco"] = true })
	wantDrifted := []string{"home001-climate", "home002-climate", "home003-climate"}
	wantPaths := map[string][]string{"home001-climate": {"/setpoint"}, "home002-climate": {"/setpoint"}, "home003-climate": {"/eco"}}

	for _, tc := range []struct {
		name    string
		against string
		unknown []string
		never   []string // the never-restored device's drifted paths
	}{
		{name: "against each device's last restore", unknown: []string{"home-new-climate"}},
		{name: "against the backup group", against: "model-house", never: []string{"/label", "/mode", "/network", "/setpoint"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := Spec{Kind: KindDrift, Source: tc.against, Target: "homes"}
			if tc.against != "" {
				ds.Profile = &identityProfile
			}
			states, paths := driftStates(t, e, ds)
			wd, wp := wantDrifted, map[string][]string{}
			for k, v := range wantPaths {
				wp[k] = v
			}
			if tc.never != nil {
				wd, wp["home-new-climate"] = append([]string{"home-new-climate"}, wd...), tc.never
			}
			if !reflect.DeepEqual(states[Drifted], wd) || !reflect.DeepEqual(paths, wp) {
				t.Fatalf("drifted %v with %v, want %v with %v", states[Drifted], paths, wd, wp)
			}
			if !reflect.DeepEqual(states[Unknown], tc.unknown) {
				t.Fatalf("unknown %v, want %v", states[Unknown], tc.unknown)
			}
		})
	}

	t.Run("remediation restores exactly the drifted devices, then none drift", func(t *testing.T) {
		dj, err := e.Start(context.Background(), Spec{Kind: KindDrift, Target: "homes"})
		if err != nil {
			t.Fatal(err)
		}
		wait(t, dj)
		specs, err := e.Remediation(dj.ID())
		if err != nil || len(specs) != 1 {
			t.Fatalf("remediation %+v, %v", specs, err)
		}
		if specs[0].Profile == nil || specs[0].AsOf == 0 || !reflect.DeepEqual(specs[0].Devices, wantDrifted) {
			t.Fatalf("remediation spec %+v", specs[0])
		}
		rj, err := e.Start(context.Background(), specs[0])
		if err != nil {
			t.Fatal(err)
		}
		if p := wait(t, rj); p.Total != 3 || p.Counts[Restored] != 3 {
			t.Fatalf("remediation %+v", p)
		}
		states, _ := driftStates(t, e, Spec{Kind: KindDrift, Target: "homes"})
		if len(states[Drifted]) != 0 || len(states[InSync]) != 10 || len(states[Unknown]) != 1 {
			t.Fatalf("after remediation: %v", states)
		}
		if f.devices["home000-climate"].current()["name"] != "kitchen" {
			t.Fatal("remediation overwrote a kept name")
		}
	})
}
