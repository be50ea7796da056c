package grouprestore

import (
	"context"
	"fmt"
	"sync"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/identifiers"
	"github.com/fleetvault/fleetvault/settingsdoc"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// WouldRestore is a dry run's state for a device that would be written.
const WouldRestore State = "would-restore"

// PlanEntry is one line of a dry run: which device would get which piece, and why.
type PlanEntry struct {
	Device string `json:"device"`
	State  State  `json:"state"` // WouldRestore, NoMatch, Ambiguous, Unsupported, Offline or Failed
	Piece  string `json:"piece,omitempty"`
	Reason string `json:"reason"`
	// Diff is what the write would change on the device (its current
	// settings against the document it would get, profile applied).
	Diff *settingsdoc.Diff `json:"diff,omitempty"`
}

// Plan is a dry run of a restore spec: it probes every target device for its
// tag (reads only) and matches it, and writes nothing anywhere.
func (e *Engine) Plan(ctx context.Context, spec Spec) ([]PlanEntry, error) {
	if spec.Kind != KindRestore {
		return nil, fmt.Errorf("a dry run plans restores, not %ss", spec.Kind)
	}
	if err := spec.Rollout.Validate(); err != nil {
		return nil, err
	}
	ro := spec.Rollout.withDefaults()
	if err := e.identityKeys(&spec); err != nil {
		return nil, err
	}
	rec := JobRecord{Spec: spec}
	devs, err := e.plan(ctx, &rec)
	if err != nil {
		return nil, err
	}
	m, err := newMatcher(spec.Policy, rec.Candidates)
	if err != nil {
		return nil, err
	}
	// One run shares the backups' contents (loaded once) and the profile.
	r := &run{e: e, ro: ro, spec: spec, content: map[string][]byte{}}
	if r.profile, err = compileProfile(spec); err != nil {
		return nil, err
	}
	choose := restoreChooser(spec, m)
	out := make([]PlanEntry, len(devs))
	sem := make(chan struct{}, ro.Concurrency)
	var wg sync.WaitGroup
	for i, d := range devs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return nil, ctx.Err()
		}
		wg.Add(1)
		go func(i int, d DeviceOutcome) {
			defer func() { <-sem; wg.Done() }()
			out[i] = r.planDevice(ctx, choose, d)
		}(i, d)
	}
	wg.Wait()
	return out, ctx.Err()
}

func (r *run) planDevice(ctx context.Context, choose func(tagmatch.Tag) (Piece, State, string), d DeviceOutcome) PlanEntry {
	pe := PlanEntry{Device: d.Device}
	target, err := identifiers.Parse(d.Ident)
	if err != nil {
		pe.State, pe.Reason = Failed, "invalid identifier: "+err.Error()
		return pe
	}
	tr, _ := r.e.transportFor(target.Scheme)
	// A plan is a run without an offline time-to-live: it never parks.
	resp, err := r.tries(ctx, &d, tr, settingsID(target, agent.MethodRead, agent.LocWrite), &agent.Request{})
	if err != nil || resp.Err != nil {
		pe.State, pe.Reason = failure("probe", err, resp)
		return pe
	}
	if s, why := writable(resp); s != "" {
		pe.State, pe.Reason = s, why
		return pe
	}
	if s, why := r.e.distrust(d, resp.Tag, "dry run"); s != "" {
		pe.State, pe.Reason = s, why
		return pe
	}
	piece, s, why := choose(resp.Tag)
	if s != "" {
		pe.State, pe.Reason = s, why
		return pe
	}
	pe.Piece, pe.Reason = piece.ID, why
	diff, err := r.planDiff(ctx, d.Device, piece, resp)
	if err != nil {
		pe.State, pe.Reason = Failed, err.Error()+"; nothing would be written"
		return pe
	}
	if r.profile != nil {
		pe.Reason += "; profile " + r.profile.Profile().Name + " applied"
	}
	pe.State, pe.Diff = WouldRestore, &diff
	return pe
}
