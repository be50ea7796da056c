package grouprestore

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"reflect"
	"testing"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/settingsdoc"
)

var identityProfile = settingsdoc.Profile{Name: "keep-identity", Keep: []string{"/name", "/network/*"},
	Set: []settingsdoc.Assign{{Pointer: "/label", Template: "{{.Device.ID}} in {{.Tag.zone}}"}}}

// identityFleet has model backups carrying the model's name and network, and
// homes each with their own.
func identityFleet(t *testing.T, homes int) (*fleet, map[string][]byte) {
	f := newFleet(t)
	for _, zone := range []string{"North", "South"} {
		f.cat.add(t, "model-house", "model-"+zone, climate(zone), agent.Settings{"name": "model-" + zone, "setpoint": 21.5,
			"network": map[any]any{"ssid": "model-net", "key": "model-key"}})
	}
	before := map[string][]byte{}
	for i := 0; i < homes; i++ {
		id := fmt.Sprintf("home%03d-climate", i)
		s := agent.Settings{"name": id, "setpoint": 18.0, "network": map[any]any{"ssid": "net" + id, "key": "key" + id}}
		f.device("homes", id, climate([]string{"North", "South"}[i%2]), s)
		before[id], _ = agent.EncodeSettings(s)
	}
	return f, before
}

func TestRestoreWithProfile(t *testing.T) {
	f, before := identityFleet(t, 8)
	e := f.engine()
	defer e.Close()
	spec := restoreSpec(Rollout{Concurrency: 3})
	spec.Profile = &identityProfile

	t.Run("dry run shows each device's diff", func(t *testing.T) {
		plan, err := e.Plan(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, pe := range plan {
			if pe.State != WouldRestore || pe.Diff == nil {
				t.Fatalf("plan entry %+v", pe)
			}
			if got, want := pe.Diff.Paths(), []string{"/label", "/setpoint"}; !reflect.DeepEqual(got, want) {
				t.Errorf("%s: diff paths %v, want %v", pe.Device, got, want)
			}
		}
	})

	j, err := e.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if p := wait(t, j); p.Counts[Restored] != 8 {
		t.Fatalf("progress %+v", p)
	}
	t.Run("identity kept, templated keys set, own hash verified", func(t *testing.T) {
		for _, o := range j.Devices() {
			d := f.devices[o.Device]
			s := d.current()
			zone, _ := d.tag.Get("zone")
			net, _ := settingsdoc.JSONValue(s["network"]).(map[string]any)
			if s["name"] != o.Device || net["ssid"] != "net"+o.Device || net["key"] != "key"+o.Device {
				t.Errorf("%s: identity not kept: %v", o.Device, s)
			}
			if s["setpoint"] != 21.5 || s["label"] != o.Device+" in "+zone {
				t.Errorf("%s: restored settings wrong: %v", o.Device, s)
			}
			b, _ := agent.EncodeSettings(s)
			if h := hex.EncodeToString(agent.Hash(b)); o.Hash != h || len(d.applied) != 1 || d.applied[0] != h {
				t.Errorf("%s: journaled hash %s, applied %v, device holds %s", o.Device, o.Hash, d.applied, h)
			}
			stored, err := f.cat.Content(context.Background(), o.Hash)
			if err != nil || !bytes.Equal(stored, b) || o.Document == "" {
				t.Errorf("%s: document %q not stored as written: %v", o.Device, o.Document, err)
			}
		}
	})
	t.Run("undo puts back the exact earlier bytes", func(t *testing.T) {
		u, err := e.Start(context.Background(), Spec{Kind: KindUndo, Source: j.ID()})
		if err != nil {
			t.Fatal(err)
		}
		if p := wait(t, u); p.Counts[Restored] != 8 {
			t.Fatalf("undo progress %+v", p)
		}
		for id, want := range before {
			got, _ := agent.EncodeSettings(f.devices[id].current())
			if !bytes.Equal(got, want) {
				t.Errorf("%s: after undo holds %x, want %x", id, got, want)
			}
		}
	})
}

func TestProfileRefusedForOneDevice(t *testing.T) {
	f, _ := identityFleet(t, 2)
	// A template over a tag key the devices lack cannot be applied: each
	// device fails with the reason and gets nothing.
	e := f.engine()
	defer e.Close()
	spec := restoreSpec(Rollout{})
	spec.Profile = &settingsdoc.Profile{Name: "needs-room", Set: []settingsdoc.Assign{{Pointer: "/room", Template: "{{.Tag.room}}"}}}
	j, err := e.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if p := wait(t, j); p.Counts[Failed] != 2 {
		t.Fatalf("progress %+v", p)
	}
	for id, d := range f.devices {
		if len(d.applied) != 0 {
			t.Errorf("%s: written despite the profile's error", id)
		}
	}
	t.Run("bad profile refused before journaling", func(t *testing.T) {
		spec.Profile = &settingsdoc.Profile{Name: "bad", Keep: []string{"name"}}
		if _, err := e.Start(context.Background(), spec); err == nil {
			t.Fatal("a bad profile was accepted")
		}
	})
}
