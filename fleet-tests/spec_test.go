package fleettests

import (
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/devicesim"
	"github.com/fleetvault/fleetvault/grouprestore"
)

// TestServerKeepsTheSpecsWord restores to MQTT and CoAP devices that break the
// protocol's word, then undoes the restore:
//
//	announces no capabilities, or only read ones    unsupported, never written
//	answers with another device id (CoAP)           failed, naming both ids, never written
//	answers with another device id (MQTT)           offline: the server drops the answer
//	                                                (device-mismatch), never written
//	applies but acknowledges another hash           failed; undo writes its snapshot back
//
// Undo covers every device the restore wrote to: restored ones are back to
// their earlier bytes, and each corrupting one received its snapshot.
func TestServerKeepsTheSpecsWord(t *testing.T) {
	spec := loadFleet(t, "testdata/spec.yaml")
	ctx := testContext(t, 2*time.Minute)
	w := startWorld(t, ctx, spec)
	before := map[string]string{} // device -> hash of its settings before the restore
	want := map[string]grouprestore.State{}
	transport := map[string]string{}
	seen := map[string]int{}
	for _, d := range w.Devices {
		if d.Group != "homes" {
			continue
		}
		before[d.ID] = hex.EncodeToString(w.Fleet.Device(d.ID).SettingsHash())
		transport[d.ID] = d.Transport
		f := d.Faults
		switch {
		case f.NoCaps:
			want[d.ID], seen["nocaps "+d.Transport] = grouprestore.Unsupported, seen["nocaps "+d.Transport]+1
		case f.ReadOnly:
			want[d.ID], seen["readonly "+d.Transport] = grouprestore.Unsupported, seen["readonly "+d.Transport]+1
		case f.WrongID && d.Transport == devicesim.TransportMQTT:
			want[d.ID], seen["wrongid mqtt"] = grouprestore.Offline, seen["wrongid mqtt"]+1
		case f.WrongID:
			want[d.ID], seen["wrongid coap"] = grouprestore.Failed, seen["wrongid coap"]+1
		case f.Corrupt:
			want[d.ID], seen["corrupt "+d.Transport] = grouprestore.Failed, seen["corrupt "+d.Transport]+1
		default:
			want[d.ID] = grouprestore.Restored
		}
	}
	for _, tr := range []string{devicesim.TransportMQTT, devicesim.TransportCoAP} {
		for _, f := range []string{"nocaps", "readonly", "wrongid", "corrupt"} {
			if seen[f+" "+tr] == 0 {
				t.Fatalf("no %s device has the %s fault (%v): the fleet is too small for this test", tr, f, seen)
			}
		}
	}

	j, p, win := run(t, ctx, w.Server.Engine, restoreSpec(w, "homes", grouprestore.Rollout{Timeout: time.Second}))
	outs := j.Devices()
	checkStates(t, p, outs, want)
	tr := truth{w.Fleet, win}
	wrote := map[string]bool{} // devices the restore wrote to
	for _, o := range outs {
		writes := tr.writes(o.Device, j.ID())
		switch want[o.Device] {
		case grouprestore.Unsupported:
			if !strings.Contains(o.Reason, "cannot be written safely") {
				t.Errorf("%s (%s): %s, want a reason saying it cannot be written safely", o.Device, transport[o.Device], o)
			}
		case grouprestore.Failed:
			if o.Reason == "" {
				t.Errorf("%s: failed without a reason", o.Device)
			}
		}
		f := w.Fleet.Device(o.Device).Info().Faults
		switch {
		case f.NoCaps || f.ReadOnly || f.WrongID:
			if len(writes) > 0 {
				t.Errorf("%s (%s, faults %+v) was written: %+v", o.Device, transport[o.Device], f, writes[0])
			}
		case len(writes) > 0:
			wrote[o.Device] = true
		}
		if f.WrongID && transport[o.Device] == devicesim.TransportCoAP && !strings.Contains(o.Reason, o.Device+"-impostor") {
			t.Errorf("%s: %s, want a reason naming the id it answered with", o.Device, o)
		}
	}

	u, up, uwin := run(t, ctx, w.Server.Engine, grouprestore.Spec{Kind: grouprestore.KindUndo, Source: j.ID(), Rollout: grouprestore.Rollout{Timeout: time.Second}})
	if up.Total != len(wrote) {
		t.Errorf("undo covers %d devices, the restore wrote to %d", up.Total, len(wrote))
	}
	utr := truth{w.Fleet, uwin}
	for _, o := range u.Devices() {
		if !wrote[o.Device] {
			t.Errorf("undo targets %s, which the restore never wrote to", o.Device)
			continue
		}
		delete(wrote, o.Device)
		sent := utr.writes(o.Device, u.ID())
		if len(sent) == 0 || hex.EncodeToString(sent[len(sent)-1].Sent) != before[o.Device] {
			t.Errorf("%s (%s): undo sent %+v, want its snapshot %s", o.Device, o.State, sent, before[o.Device])
		}
		if want[o.Device] == grouprestore.Restored && (o.State != grouprestore.Restored || tr.Holds(o.Device) != before[o.Device]) {
			t.Errorf("%s: undo %s, holds %s, want restored to %s", o.Device, o, tr.Holds(o.Device), before[o.Device])
		}
	}
	for d := range wrote {
		t.Errorf("undo skipped %s (%s), which the restore wrote to", d, want[d])
	}
	checkReferencesUntouched(t, w)
}
