package fleettests

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/scenario"
	"github.com/fleetvault/fleetvault/settingsdoc"
)

// settingsHash is the hex hash of settings, as a device answers it.
func settingsHash(t *testing.T, s agent.Settings) string {
	t.Helper()
	b, err := agent.EncodeSettings(s)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(agent.Hash(b))
}

// versionedWorld backs up the reference thermostats in three versions (their
// reference settings, then setpoints 31 and 32): it returns a time after each
// version's backup and before the next one's, and each reference's settings
// hash per version.
func versionedWorld(t *testing.T, ctx context.Context) (*scenario.World, []time.Time, map[string][]string) {
	w := startWorld(t, ctx, loadFleet(t, "testdata/versions.yaml")) // version 0
	hashes := map[string][]string{}
	record := func() {
		for _, d := range w.Devices {
			if d.Reference {
				hashes[d.ID] = append(hashes[d.ID], settingsHash(t, w.Fleet.Device(d.ID).CurrentSettings()))
			}
		}
	}
	// mark is a millisecond (the as-of resolution) no earlier than now; the
	// next version is backed up after the clock has passed it.
	mark := func() time.Time {
		m := time.Now().Add(time.Millisecond).Truncate(time.Millisecond)
		for !time.Now().After(m.Add(time.Millisecond)) { // poll the clock
		}
		return m
	}
	record()
	marks := []time.Time{mark()}
	for v := 1; v <= 2; v++ {
		for _, d := range w.Devices {
			if d.Reference {
				dev := w.Fleet.Device(d.ID)
				s := dev.CurrentSettings()
				s["setpoint_c"] = 30.0 + float64(v)
				if err := dev.Apply(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
		}
		if _, err := w.BackupReferences(ctx); err != nil {
			t.Fatal(err)
		}
		record()
		marks = append(marks, mark())
	}
	return w, marks, hashes
}

// TestRestoreAsOf restores each version of the references by its time.
func TestRestoreAsOf(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	w, marks, hashes := versionedWorld(t, ctx)
	expect := w.Expect("homes") // who matches which reference
	for v := range marks {
		t.Run(fmt.Sprintf("version %d", v), func(t *testing.T) {
			spec := restoreSpec(w, "homes", grouprestore.Rollout{Timeout: 2 * time.Second})
			spec.AsOf = marks[v].UnixMilli()
			j, p, _ := run(t, ctx, w.Server.Engine, spec)
			if p.Counts[grouprestore.Restored] != p.Total {
				t.Fatalf("%v", p.Counts)
			}
			for _, o := range j.Devices() {
				want := hashes[expect[o.Device].From][v]
				if got := hex.EncodeToString(w.Fleet.Device(o.Device).SettingsHash()); got != want || o.Hash != want {
					t.Errorf("%s: holds %.12s (job says %.12s), want version %d of %s: %.12s", o.Device, got, o.Hash, v, expect[o.Device].From, want)
				}
			}
		})
	}
	t.Run("before the first backup: nothing to restore", func(t *testing.T) {
		spec := restoreSpec(w, "homes", grouprestore.Rollout{})
		spec.AsOf = marks[0].Add(-time.Hour).UnixMilli()
		if _, err := w.Server.Engine.Start(ctx, spec); err == nil {
			t.Fatal("a restore as of a time before any backup started")
		}
	})
}

// TestReplacementRestore writes one client's backup to another device: with
// matching tags under a profile keeping the new device's identity; with a
// tag mismatch, nothing unless allowed, which the outcome records.
func TestReplacementRestore(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	w, _, _ := versionedWorld(t, ctx)
	zoneOf := map[string]string{}
	var north, south string
	for _, d := range w.Devices {
		z, _ := d.Tag.Get("zone")
		zoneOf[d.ID] = z
		if !d.Reference && z == "North" && north == "" {
			north = d.ID
		}
		if !d.Reference && z == "South" && south == "" {
			south = d.ID
		}
	}
	old := "model-north-thermostat"
	piece, err := w.Server.Catalog.LatestAsOf(old, "settings", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	keep := &settingsdoc.Profile{Name: "keep-identity", Keep: []string{"/name", "/network/*"}}
	replace := func(device string, allow bool) (*grouprestore.Job, grouprestore.Progress) {
		spec := grouprestore.Spec{Kind: grouprestore.KindRestore, Source: piece.Group, Piece: piece.ID, Device: device,
			AllowTagMismatch: allow, Profile: keep, Rollout: grouprestore.Rollout{Timeout: 2 * time.Second}}
		j, p, _ := run(t, ctx, w.Server.Engine, spec)
		if p.Total != 1 {
			t.Fatalf("a replacement restore planned %d devices", p.Total)
		}
		return j, p
	}

	t.Run("matching tags: the old device's settings, the new one's identity", func(t *testing.T) {
		before := w.Fleet.Device(north).CurrentSettings()
		j, p := replace(north, false)
		if p.Counts[grouprestore.Restored] != 1 {
			t.Fatalf("%v: %v", p.Counts, j.Devices())
		}
		want := w.Fleet.Device(old).CurrentSettings()
		want["name"], want["network"] = before["name"], before["network"]
		if got, wh := hex.EncodeToString(w.Fleet.Device(north).SettingsHash()), settingsHash(t, want); got != wh || j.Devices()[0].Hash != wh {
			t.Fatalf("%s holds %v, want %v", north, w.Fleet.Device(north).CurrentSettings(), want)
		}
	})
	t.Run("tag mismatch refused: nothing changes", func(t *testing.T) {
		before := hex.EncodeToString(w.Fleet.Device(south).SettingsHash())
		j, p := replace(south, false)
		o := j.Devices()[0]
		if p.Counts[grouprestore.NoMatch] != 1 || !strings.Contains(o.Reason, "tag mismatch") || !strings.Contains(o.Reason, "--allow-tag-mismatch") {
			t.Fatalf("%v: %v", p.Counts, o)
		}
		if got := hex.EncodeToString(w.Fleet.Device(south).SettingsHash()); got != before || len(w.Truth().Received(south, j.ID())) != 0 {
			t.Fatalf("%s was written although its tag does not match", south)
		}
	})
	t.Run("tag mismatch allowed: written, and the outcome says so", func(t *testing.T) {
		j, p := replace(south, true)
		o := j.Devices()[0]
		if p.Counts[grouprestore.Restored] != 1 || !strings.Contains(o.Reason, "TAG MISMATCH ALLOWED") {
			t.Fatalf("%v: %v", p.Counts, o)
		}
		if got := w.Fleet.Device(south).CurrentSettings(); got["setpoint_c"] != w.Fleet.Device(old).CurrentSettings()["setpoint_c"] || got["name"] != south {
			t.Fatalf("%s holds %v", south, got)
		}
		if !j.Spec().AllowTagMismatch {
			t.Fatal("the job does not record that it allowed a mismatch")
		}
	})
}
