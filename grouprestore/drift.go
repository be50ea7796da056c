package grouprestore

import (
	"bytes"
	"context"
	"fmt"
	"sort"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/identifiers"
	"github.com/fleetvault/fleetvault/settingsdoc"
)

// KindDrift compares what each device of a group holds with what it should
// hold: the match in a backup group (Spec.Source), or else its last restore.
const KindDrift Kind = "drift"

// Drift states, final.
const (
	InSync  State = "in-sync" // holds what it should (profile applied)
	Drifted State = "drifted" // holds something else: DeviceOutcome.Diff says what
	Unknown State = "unknown" // offline, or nothing to compare with
)

// driftPlan targets a device group's members; without a backup group, each
// device's reference is the document its last restore (or undo) wrote.
func (e *Engine) driftPlan(ctx context.Context, rec *JobRecord) ([]DeviceOutcome, error) {
	spec := rec.Spec
	devs, err := e.members(ctx, spec.Target, spec.Identity)
	if err != nil {
		return nil, err
	}
	if spec.Source != "" {
		return devs, e.freezeCandidates(ctx, rec)
	}
	last, err := e.lastWrites(devs)
	if err != nil {
		return nil, err
	}
	for i, d := range devs {
		if w, ok := last[d.Device]; ok {
			devs[i].Piece, devs[i].Hash, devs[i].RefJob = w.Piece, w.Hash, w.job
		}
	}
	return devs, nil
}

type lastWrite struct {
	DeviceOutcome
	job string
}

// lastWrites finds, for each device, the newest verified write of a restore
// or undo job in the journal.
func (e *Engine) lastWrites(devs []DeviceOutcome) (map[string]lastWrite, error) {
	want := make(map[string]bool, len(devs))
	for _, d := range devs {
		want[d.Device] = true
	}
	recs, err := e.journal.jobs()
	if err != nil {
		return nil, err
	}
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].Created > recs[j].Created })
	out := map[string]lastWrite{}
	for _, rec := range recs {
		if rec.Spec.Kind != KindRestore && rec.Spec.Kind != KindUndo {
			continue
		}
		_, outs, err := e.journal.load(rec.ID)
		if err != nil {
			return nil, err
		}
		for _, o := range outs {
			if _, seen := out[o.Device]; !seen && want[o.Device] && o.State == Restored && o.Hash != "" {
				out[o.Device] = lastWrite{o, rec.ID}
			}
		}
		if len(out) == len(want) {
			break
		}
	}
	return out, nil
}

// drift runs one device of a drift job: probe, compute what it should hold,
// compare.
func (r *run) drift(ctx context.Context, seq int, d DeviceOutcome, target identifiers.ID, parked func()) {
	resp, err := r.call(ctx, &d, settingsID(target, agent.MethodRead, agent.LocWrite), &agent.Request{}, parked)
	if err != nil || resp.Err != nil {
		if r.abandoned(ctx) {
			return
		}
		s, why := failure("probe", err, resp)
		if s == Offline {
			s = Unknown
		}
		r.final(ctx, seq, d, s, why)
		return
	}
	want, why, err := r.driftReference(ctx, &d, resp)
	if err != nil {
		r.final(ctx, seq, d, Failed, err.Error())
		return
	}
	if want == nil {
		r.final(ctx, seq, d, Unknown, why)
		return
	}
	d.Hash = fmt.Sprintf("%x", agent.Hash(want))
	if bytes.Equal(agent.Hash(want), agent.Hash(resp.Settings)) {
		r.final(ctx, seq, d, InSync, why)
		return
	}
	ws, err1 := agent.DecodeSettings(want)
	hs, err2 := agent.DecodeSettings(resp.Settings)
	if err1 != nil || err2 != nil {
		r.final(ctx, seq, d, Drifted, why+"; the settings cannot be decoded for a diff")
		return
	}
	diff := settingsdoc.DiffSettings("expected", "device", ws, hs)
	d.Diff = &diff
	r.final(ctx, seq, d, Drifted, fmt.Sprintf("%s; differs at %v", why, diff.Paths()))
}

// driftReference returns what a probed device should hold (nil when there is
// nothing to compare with, saying why).
func (r *run) driftReference(ctx context.Context, d *DeviceOutcome, resp *agent.Response) ([]byte, string, error) {
	if r.spec.Source != "" {
		piece, s, why := r.choose(ctx, *d, resp)
		if s != "" {
			return nil, "no reference: " + why, nil
		}
		d.Piece = piece.ID
		doc, err := r.document(ctx, d.Device, piece, resp)
		return doc, "compared with backup " + piece.ID + " of " + r.spec.Source, err
	}
	if d.Hash == "" {
		return nil, "no reference: never restored; compare with a backup group instead (--against)", nil
	}
	written, err := r.fetch(ctx, d.Hash)
	if err != nil {
		return nil, "", fmt.Errorf("read the settings job %s wrote: %w", d.RefJob, err)
	}
	prof, err := r.refProfile(d.RefJob)
	if err != nil || prof == nil {
		return written, "compared with what job " + d.RefJob + " wrote", err
	}
	data := settingsdoc.Data{Device: settingsdoc.DeviceData{ID: d.Device, Group: r.spec.Target}, Tag: settingsdoc.TagData(resp.Tag)}
	doc, err := prof.Apply(written, resp.Settings, data)
	if err != nil {
		return nil, "", fmt.Errorf("profile %s: %w", prof.Profile().Name, err)
	}
	return doc, fmt.Sprintf("compared with what job %s wrote, profile %s applied", d.RefJob, prof.Profile().Name), nil
}

// refProfile returns the compiled profile of a restore job (nil: none),
// loaded once per drift job.
func (r *run) refProfile(job string) (*settingsdoc.Compiled, error) {
	r.contentMu.Lock()
	defer r.contentMu.Unlock()
	if p, ok := r.refProfiles[job]; ok {
		return p, nil
	}
	rec, _, err := r.e.journal.load(job)
	if err != nil {
		return nil, fmt.Errorf("restore job %s: %w", job, err)
	}
	var p *settingsdoc.Compiled
	if rec.Spec.Profile != nil {
		if p, err = rec.Spec.Profile.Compile(); err != nil {
			return nil, fmt.Errorf("restore job %s: %w", job, err)
		}
	}
	if r.refProfiles == nil {
		r.refProfiles = map[string]*settingsdoc.Compiled{}
	}
	r.refProfiles[job] = p
	return p, nil
}

// Remediation returns the restores that bring a finished drift job's drifted
// devices back: one per reference (the backup group compared with, or each
// last restore, replayed as of its time with its profile and policy), each
// limited to those devices, with every safeguard of a restore.
func (e *Engine) Remediation(driftJob string) ([]Spec, error) {
	rec, devs, err := e.journal.load(driftJob)
	if err != nil {
		return nil, err
	}
	if rec.Spec.Kind != KindDrift {
		return nil, fmt.Errorf("job %s is a %s, not a drift job", driftJob, rec.Spec.Kind)
	}
	byRef := map[string][]string{}
	for _, d := range devs {
		if d.State == Drifted {
			byRef[d.RefJob] = append(byRef[d.RefJob], d.Device)
		}
	}
	refs := make([]string, 0, len(byRef))
	for ref := range byRef {
		refs = append(refs, ref)
	}
	sort.Strings(refs)
	var out []Spec
	for _, ref := range refs {
		spec := Spec{Kind: KindRestore, Source: rec.Spec.Source, Target: rec.Spec.Target, Policy: rec.Spec.Policy,
			Profile: rec.Spec.Profile, AsOf: rec.Spec.AsOf, Rollout: rec.Spec.Rollout, Devices: byRef[ref]}
		if ref != "" {
			rr, _, err := e.journal.load(ref)
			if err != nil {
				return nil, fmt.Errorf("restore job %s: %w", ref, err)
			}
			if rr.Spec.Kind != KindRestore || rr.Spec.replacement() {
				return nil, fmt.Errorf("devices %v were last written by %s job %s, which cannot be replayed; compare with a backup group (--against) and remediate from it", byRef[ref], rr.Spec.Kind, ref)
			}
			spec.Source, spec.Policy, spec.Profile, spec.AsOf = rr.Spec.Source, rr.Spec.Policy, rr.Spec.Profile, rr.Spec.AsOf
			if spec.AsOf == 0 {
				spec.AsOf = rr.Created
			}
		}
		out = append(out, spec)
	}
	return out, nil
}

// onlyDevices keeps the planned devices a spec names (all when it names none).
func onlyDevices(devs []DeviceOutcome, names []string) ([]DeviceOutcome, error) {
	if len(names) == 0 {
		return devs, nil
	}
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	var out []DeviceOutcome
	for _, d := range devs {
		if want[d.Device] {
			out = append(out, d)
			delete(want, d.Device)
		}
	}
	if len(want) > 0 {
		var missing []string
		for n := range want {
			missing = append(missing, n)
		}
		sort.Strings(missing)
		return nil, fmt.Errorf("devices %v are not members of the device group", missing)
	}
	return out, nil
}
