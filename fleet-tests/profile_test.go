package fleettests

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/scenario"
	"github.com/fleetvault/fleetvault/settingsdoc"
)

// TestRestoreWithProfile restores the shipped model house to new homes under
// a profile that keeps each device's name and network credentials and sets a
// templated label: every home keeps its own identity, gets the model's
// tuning, acknowledges its own document's hash, and undo puts back the exact
// bytes each device held.
func TestRestoreWithProfile(t *testing.T) {
	spec := loadFleet(t, "../examples/fleets/model-house.yaml")
	scenario.ScaleTargets(spec, sites(40, 1000))
	ctx := testContext(t, 5*time.Minute)
	w := startWorld(t, ctx, spec)
	eventually(t, ctx, time.Minute, "late joiners to come online", func() bool { return w.Fleet.Stats().Waiting == 0 })
	prof := &settingsdoc.Profile{Name: "keep-identity", Keep: []string{"/name", "/network/*"},
		Set: []settingsdoc.Assign{{Pointer: "/label", Template: "{{.Device.ID}} ({{.Tag.zone}})"}}}
	if err := w.AttachProfile(prof); err != nil {
		t.Fatal(err)
	}
	target := w.TargetGroups()[0]
	before := w.SettingsOf(target)
	beforeBytes := map[string][]byte{}
	for id, s := range before {
		beforeBytes[id], _ = agent.EncodeSettings(s)
	}
	rs := restoreSpec(w, target, grouprestore.Rollout{Timeout: time.Second, Retries: 1})
	rs.Profile = prof
	j, p, _ := run(t, ctx, w.Server.Engine, rs)
	if p.Counts[grouprestore.Restored] == 0 {
		t.Fatalf("nothing restored: %v", p.Counts)
	}
	// The oracle's view: the reference's settings with the kept parts as the
	// device held them, and the label the template gives.
	expect, err := w.ExpectKept(target, nil, prof.Keep, before)
	if err != nil {
		t.Fatal(err)
	}
	restored := map[string]bool{}
	for _, o := range j.Devices() {
		if o.State != grouprestore.Restored {
			continue
		}
		restored[o.Device] = true
		e := expect[o.Device]
		dev := w.Fleet.Device(o.Device)
		now := dev.CurrentSettings()
		t.Run(o.Device, func(t *testing.T) {
			for _, k := range []string{"name", "network"} {
				if fmt.Sprint(now[k]) != fmt.Sprint(before[o.Device][k]) {
					t.Errorf("%s: /%s was %v, is %v", o.Device, k, before[o.Device][k], now[k])
				}
			}
			zone, _ := dev.Info().Tag.Get("zone")
			if want := o.Device + " (" + zone + ")"; now["label"] != want {
				t.Errorf("/label %v, want %q", now["label"], want)
			}
			// Without the label, it holds what the oracle expects.
			delete(now, "label")
			b, _ := agent.EncodeSettings(now)
			if h := hex.EncodeToString(agent.Hash(b)); h != e.Want {
				t.Errorf("holds %.12s without its label, the oracle expects %.12s from %s", h, e.Want, e.From)
			}
			if got := hex.EncodeToString(dev.SettingsHash()); got != o.Hash {
				t.Errorf("holds %.12s, the job verified %.12s", got, o.Hash)
			}
			if sent := w.Truth().Received(o.Device, j.ID()); len(sent) != 1 || sent[0] != o.Hash {
				t.Errorf("was sent %v, want exactly its own document %.12s", sent, o.Hash)
			}
			if o.Document == "" {
				t.Errorf("no stored document")
			}
		})
	}

	u, up, _ := run(t, ctx, w.Server.Engine, grouprestore.Spec{Kind: grouprestore.KindUndo, Source: j.ID()})
	if up.Counts[grouprestore.Restored] != len(restored) {
		t.Fatalf("undo %s: %v, want %d restored", u.ID(), up.Counts, len(restored))
	}
	for id := range restored {
		got, _ := agent.EncodeSettings(w.Fleet.Device(id).CurrentSettings())
		if !bytes.Equal(got, beforeBytes[id]) {
			t.Errorf("%s: after undo holds %x, before the restore %x", id, got, beforeBytes[id])
		}
	}
}
