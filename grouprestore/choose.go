package grouprestore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// AsOfCatalog is a Catalog that can also say what a backup group held at a
// time; restores with Spec.AsOf need one.
type AsOfCatalog interface {
	// CandidatesAsOf is Candidates as the group stood at t: the newest piece
	// of each client backed up at or before t.
	CandidatesAsOf(ctx context.Context, group string, t time.Time) ([]Piece, error)
}

// DeviceDirectory is a Directory that can also resolve one device;
// replacement restores (Spec.Device) need one.
type DeviceDirectory interface {
	// Device returns one device and where to reach it.
	Device(ctx context.Context, id string) (Target, error)
}

// ErrAsOfUnsupported and ErrDeviceUnsupported mean the engine's catalog or
// directory cannot serve a restore as of a time, or to one device.
var (
	ErrAsOfUnsupported   = errors.New("the catalog cannot list a backup group as of a time")
	ErrDeviceUnsupported = errors.New("the directory cannot resolve a single device")
)

// replacement reports whether a restore writes one given piece to one device.
func (s Spec) replacement() bool { return s.Piece != "" || s.Device != "" }

// restoreCandidates freezes what a restore may write: the one piece of a
// replacement restore, or the backup group's candidates (as of AsOf).
func (e *Engine) restoreCandidates(ctx context.Context, spec Spec) ([]Piece, error) {
	if spec.replacement() {
		if spec.Piece == "" || spec.Device == "" {
			return nil, errors.New("a replacement restore needs both the piece and the device to write it to")
		}
		p, err := e.cat.Piece(ctx, spec.Piece)
		if err != nil {
			return nil, fmt.Errorf("piece %s: %w", spec.Piece, err)
		}
		return []Piece{p}, nil
	}
	if spec.AsOf == 0 {
		return e.cat.Candidates(ctx, spec.Source)
	}
	ac, ok := e.cat.(AsOfCatalog)
	if !ok {
		return nil, ErrAsOfUnsupported
	}
	return ac.CandidatesAsOf(ctx, spec.Source, time.UnixMilli(spec.AsOf))
}

// freezeCandidates checks what a restore (or drift) may match and keeps it
// in the job's record, so a resumed job matches against the same set.
func (e *Engine) freezeCandidates(ctx context.Context, rec *JobRecord) error {
	spec := rec.Spec
	cands, err := e.restoreCandidates(ctx, spec)
	if err != nil {
		return fmt.Errorf("backup group %q: %w", spec.Source, err)
	}
	if len(cands) == 0 {
		return fmt.Errorf("backup group %q: %w", spec.Source, ErrEmptyGroup)
	}
	if _, err := newMatcher(spec.Policy, cands); err != nil {
		return err
	}
	rec.Candidates = cands
	return nil
}

// restoreTargets is the plan of a restore: the device group's members, or the
// one device of a replacement restore.
func (e *Engine) restoreTargets(ctx context.Context, spec Spec) ([]DeviceOutcome, error) {
	if !spec.replacement() {
		devs, err := e.members(ctx, spec.Target, spec.Identity)
		if err != nil {
			return nil, err
		}
		return onlyDevices(devs, spec.Devices)
	}
	dd, ok := e.dir.(DeviceDirectory)
	if !ok {
		return nil, ErrDeviceUnsupported
	}
	t, err := dd.Device(ctx, spec.Device)
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", spec.Device, err)
	}
	if _, ok := e.transportFor(t.Ident.Scheme); !ok {
		return nil, fmt.Errorf("device %s: no transport for %q identifiers", t.ID, t.Ident.Scheme)
	}
	return []DeviceOutcome{{Device: t.ID, Ident: settingsID(t.Ident, agent.MethodRead, agent.LocWrite).String(), State: Pending,
		Identity: tagmatch.Identity(t.Tag, spec.Identity)}}, nil
}

// restoreChooser is how a restore picks the piece for a probed tag: the
// match policy; for a replacement restore, its one piece when the tags match
// or the spec allows a mismatch (which the reason records).
func restoreChooser(spec Spec, m *matcher) func(tagmatch.Tag) (Piece, State, string) {
	if !spec.replacement() {
		return m.match
	}
	return func(tag tagmatch.Tag) (Piece, State, string) {
		p, s, why := m.match(tag)
		if s == "" {
			return p, s, why
		}
		if !spec.AllowTagMismatch {
			return Piece{}, NoMatch, fmt.Sprintf("tag mismatch, refused: %s; nothing written (allow it with --allow-tag-mismatch)", why)
		}
		for _, c := range m.pieces {
			return c, "", fmt.Sprintf("TAG MISMATCH ALLOWED (--allow-tag-mismatch): %s", why)
		}
		return Piece{}, NoMatch, why
	}
}
