package scenario

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/settingsdoc"
)

// AttachProfile stores a fleet's restore profile in the installation and
// attaches it to the world's backup group, so every restore from it uses the
// profile. A nil profile is nothing to do.
func (w *World) AttachProfile(p *settingsdoc.Profile) error {
	if p == nil {
		return nil
	}
	if err := w.Server.Catalog.PutProfile(*p); err != nil {
		return fmt.Errorf("restore profile %s: %w", p.Name, err)
	}
	if err := w.Server.Catalog.AttachProfile(w.BackupGroup, p.Name); err != nil {
		return fmt.Errorf("attach restore profile %s to %s: %w", p.Name, w.BackupGroup, err)
	}
	return nil
}

// SettingsOf returns the settings every device of group holds now: take it
// before a restore to check what a profile kept.
func (w *World) SettingsOf(group string) map[string]agent.Settings {
	out := map[string]agent.Settings{}
	for _, d := range w.Devices {
		if d.Group == group {
			out[d.ID] = w.Fleet.Device(d.ID).CurrentSettings()
		}
	}
	return out
}

// ExpectKept is ExpectKeys under a profile that keeps parts of each device's
// settings: each device must get its reference's settings with every kept
// part as it held it before the restore. The oracle reads the keep list
// itself, on purpose without package settingsdoc: it understands top-level
// keys (/name) and every member of a top-level map (/network/*), and refuses
// other pointers.
func (w *World) ExpectKept(group string, keys, keep []string, before map[string]agent.Settings) (map[string]Expectation, error) {
	expect := w.ExpectKeys(group, keys)
	for id, e := range expect {
		if e.State != grouprestore.Restored {
			continue
		}
		want := w.Fleet.Device(e.From).CurrentSettings()
		if want == nil {
			return nil, fmt.Errorf("oracle: no settings for reference %s", e.From)
		}
		for _, k := range keep {
			if err := keepTopLevel(want, before[id], k); err != nil {
				return nil, err
			}
		}
		b, err := agent.EncodeSettings(want)
		if err != nil {
			return nil, fmt.Errorf("oracle: %s: %w", id, err)
		}
		e.Want = hex.EncodeToString(agent.Hash(b))
		expect[id] = e
	}
	return expect, nil
}

func keepTopLevel(want, before agent.Settings, ptr string) error {
	key, wild := strings.CutSuffix(ptr, "/*")
	if !strings.HasPrefix(key, "/") || strings.ContainsAny(key[1:], "/~*") {
		return fmt.Errorf("oracle: keep %q: only /key and /key/* are understood", ptr)
	}
	key = key[1:]
	old, had := before[key]
	ref, inRef := want[key]
	_, oldMap := old.(map[string]any)
	_, refMap := ref.(map[string]any)
	switch {
	case wild && ((had && !oldMap) || (inRef && !refMap)):
		return fmt.Errorf("oracle: keep %q over a value that is not a map: not judged", ptr)
	case had:
		want[key] = old
	case wild && inRef:
		want[key] = map[string]any{} // the section stays, none of its members
	default:
		delete(want, key)
	}
	return nil
}

// CheckKept reports every device a job reports restored whose settings at a
// kept top-level key differ from what it held before.
func (w *World) CheckKept(outcomes []grouprestore.DeviceOutcome, keep []string, before map[string]agent.Settings) []Mismatch {
	var ms []Mismatch
	for _, o := range outcomes {
		if o.State != grouprestore.Restored {
			continue
		}
		now := w.Fleet.Device(o.Device).CurrentSettings()
		for _, ptr := range keep {
			key := strings.TrimPrefix(strings.TrimSuffix(ptr, "/*"), "/")
			if fmt.Sprint(now[key]) != fmt.Sprint(before[o.Device][key]) {
				ms = append(ms, Mismatch{o.Device, fmt.Sprintf("%s was %v before the restore and is %v now", ptr, before[o.Device][key], now[key])})
			}
		}
	}
	return ms
}
