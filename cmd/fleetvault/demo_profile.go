package main

import (
	"strings"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/scenario"
	"github.com/fleetvault/fleetvault/settingsdoc"
)

// demoProfile attaches the fleet's restore profile to the backup group and
// returns the profile restores from it use (nil: none).
func demoProfile(w *scenario.World, p *settingsdoc.Profile, say func(string, ...any)) (*settingsdoc.Profile, error) {
	if err := w.AttachProfile(p); err != nil {
		return nil, err
	}
	got, err := w.Server.Catalog.GroupProfile(w.BackupGroup)
	if err != nil || got.Name == "" {
		return nil, err
	}
	say("  restores from %q use profile %s: %s", w.BackupGroup, got.Name, strings.Join(got.Lines(), "; "))
	return &got, nil
}

// demoCheck holds a restore job to the ground truth: the oracle's expected
// settings for each device (under the profile: the reference's with each
// kept part as the device held it) and, under the profile, that every
// restored device still holds its own kept parts (its name). It returns the
// mismatches and how many restored devices had their kept parts checked.
func demoCheck(w *scenario.World, j *grouprestore.Job, target string, keys []string, p *settingsdoc.Profile, before map[string]agent.Settings) ([]scenario.Mismatch, int, error) {
	if p == nil {
		return scenario.Check(j.ID(), j.Devices(), w.ExpectKeys(target, keys), w.Truth()), 0, nil
	}
	expect, err := w.ExpectKept(target, keys, p.Keep, before)
	if err != nil {
		return nil, 0, err
	}
	ms := scenario.Check(j.ID(), j.Devices(), expect, w.Truth())
	ms = append(ms, w.CheckKept(j.Devices(), p.Keep, before)...)
	return ms, j.Progress().Counts[grouprestore.Restored], nil
}
