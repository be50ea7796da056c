package scenario

import (
	"fmt"
	"sort"
	"strings"

	"github.com/fleetvault/fleetvault/devicesim"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// Truth is what the simulated devices know of themselves.
type Truth interface {
	// Received returns the hex hashes of the settings a device was sent by
	// writes of job, in order (repeats of the same write included).
	Received(device, job string) []string
	// Holds returns the hex hash of the settings a device holds now.
	Holds(device string) string
}

// Expectation is what an independent oracle says a restore must do to one
// device: write the settings of exactly one reference device whose match keys
// (by default manufacturer, product, model and zone) are the device's, or nothing.
type Expectation struct {
	Device string
	Want   string // hex hash of the settings it must get; "" for none
	From   string // the reference device they come from
	State  grouprestore.State
}

// matchKeys are the keys of tagmatch's default policy, re-implemented here
// on purpose: the oracle must not share code with what it checks.
var matchKeys = []string{"manufacturer", "product", "model", "zone"}

func matchKey(t tagmatch.Tag, keys []string) string {
	var b strings.Builder
	for _, k := range keys {
		v, _ := t.Get(k)
		b.WriteString(k + "=" + v + "\x00")
	}
	return b.String()
}

// Expect computes the oracle's expectation for every non-reference device,
// given the reference devices' settings hashes (from the ground truth). keys
// are the tag keys that must be equal (nil: the default policy's).
func Expect(devices []devicesim.DeviceInfo, truth Truth, keys []string) map[string]Expectation {
	if keys == nil {
		keys = matchKeys
	}
	refs := map[string][]devicesim.DeviceInfo{}
	for _, d := range devices {
		if d.Reference {
			k := matchKey(d.Tag, keys)
			refs[k] = append(refs[k], d)
		}
	}
	out := map[string]Expectation{}
	for _, d := range devices {
		if d.Reference {
			continue
		}
		e := Expectation{Device: d.ID}
		switch rs := refs[matchKey(d.Tag, keys)]; len(rs) {
		case 0:
			e.State = grouprestore.NoMatch
		case 1:
			e.State, e.Want, e.From = grouprestore.Restored, truth.Holds(rs[0].ID), rs[0].ID
		default:
			e.State = grouprestore.Ambiguous
		}
		out[d.ID] = e
	}
	return out
}

// Mismatch is one disagreement between a job's report and the ground truth.
type Mismatch struct {
	Device string `json:"device"`
	Detail string `json:"detail"`
}

func (m Mismatch) String() string { return m.Device + ": " + m.Detail }

// Check compares a restore job's outcomes with the ground truth. It holds the
// engine to its promises whatever faults the devices had: nothing written to
// a device whose tag matched no backup (or two equally); nothing but the
// expected settings written to any device; no device sent two different
// settings by one job; every device reported restored holds what it should;
// the reported match agrees with the oracle's.
func Check(job string, outcomes []grouprestore.DeviceOutcome, expect map[string]Expectation, truth Truth) []Mismatch {
	var ms []Mismatch
	add := func(dev, format string, args ...any) { ms = append(ms, Mismatch{dev, fmt.Sprintf(format, args...)}) }
	seen := map[string]bool{}
	for _, o := range outcomes {
		seen[o.Device] = true
		e, ok := expect[o.Device]
		if !ok {
			add(o.Device, "restored to a device that is not a target")
			continue
		}
		got := truth.Received(o.Device, job)
		distinct := map[string]bool{}
		for _, h := range got {
			distinct[h] = true
		}
		if len(distinct) > 1 {
			add(o.Device, "received %d different settings from one job", len(distinct))
		}
		for h := range distinct {
			if e.Want == "" {
				add(o.Device, "was written settings %.12s although its tag matches %s", h, describe(e.State))
			} else if h != e.Want {
				add(o.Device, "was written settings %.12s, expected %.12s from %s", h, e.Want, e.From)
			}
		}
		switch o.State {
		case grouprestore.Restored:
			if e.Want == "" {
				add(o.Device, "reported restored, but the oracle says %s", describe(e.State))
			} else if holds := truth.Holds(o.Device); holds != e.Want {
				add(o.Device, "reported restored, but holds %.12s instead of %.12s", holds, e.Want)
			}
		case grouprestore.NoMatch, grouprestore.Ambiguous:
			if o.State != e.State {
				add(o.Device, "reported %s, but the oracle says %s", o.State, describe(e.State))
			}
		}
	}
	for id := range expect {
		if !seen[id] {
			add(id, "a target device has no outcome in the job")
		}
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Device < ms[j].Device })
	return ms
}

func describe(s grouprestore.State) string {
	switch s {
	case grouprestore.NoMatch:
		return "no backup"
	case grouprestore.Ambiguous:
		return "two backups equally (ambiguous)"
	}
	return string(s)
}
