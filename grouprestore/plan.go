package grouprestore

import (
	"context"
	"fmt"
	"sync"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/identifiers"
)

// WouldRestore is a dry run's state for a device that would be written.
const WouldRestore State = "would-restore"

// PlanEntry is one line of a dry run: which device would get which piece, and why.
type PlanEntry struct {
	Device string `json:"device"`
	State  State  `json:"state"` // WouldRestore, NoMatch, Ambiguous, Unsupported, Offline or Failed
	Piece  string `json:"piece,omitempty"`
	Reason string `json:"reason"`
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
			out[i] = e.planDevice(ctx, ro, m, d)
		}(i, d)
	}
	wg.Wait()
	return out, ctx.Err()
}

func (e *Engine) planDevice(ctx context.Context, ro Rollout, m *matcher, d DeviceOutcome) PlanEntry {
	pe := PlanEntry{Device: d.Device}
	target, err := identifiers.Parse(d.Ident)
	if err != nil {
		pe.State, pe.Reason = Failed, "invalid identifier: "+err.Error()
		return pe
	}
	tr, _ := e.transportFor(target.Scheme)
	// A plan is a run without an offline time-to-live: it never parks.
	r := &run{e: e, ro: ro}
	resp, err := r.tries(ctx, &d, tr, settingsID(target, agent.MethodRead, agent.LocTag), &agent.Request{})
	if err != nil || resp.Err != nil {
		pe.State, pe.Reason = failure("probe", err, resp)
		return pe
	}
	if s, why := writable(resp); s != "" {
		pe.State, pe.Reason = s, why
		return pe
	}
	if s, why := e.distrust(d, resp.Tag, "dry run"); s != "" {
		pe.State, pe.Reason = s, why
		return pe
	}
	piece, s, why := m.match(resp.Tag)
	if s != "" {
		pe.State, pe.Reason = s, why
		return pe
	}
	pe.State, pe.Piece, pe.Reason = WouldRestore, piece.ID, why
	return pe
}
