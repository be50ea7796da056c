package service

import (
	"errors"
	"fmt"
	"time"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/grouprestore"
)

// ParseAsOf reads a restore's "as of" time: RFC 3339 (2026-11-24T10:00:00Z),
// or a date (2026-11-24, meaning the end of that day, UTC). "" is no bound.
func ParseAsOf(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		return d.Add(24*time.Hour - time.Millisecond), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: write 2026-11-24T10:00:00Z (RFC 3339) or 2026-11-24 (the end of that day, UTC)", s)
}

// restoreFields checks, without reading anything, the fields that choose a
// restore's version and destination and the fields that only some kinds
// take, and copies them into spec.
func restoreFields(nj apiclient.NewJob, spec *grouprestore.Spec) error {
	kind := spec.Kind
	switch {
	case kind != grouprestore.KindRestore && (nj.Replacement() || nj.AllowTagMismatch):
		return &FieldError{Field: "device", Problem: fmt.Sprintf("\"device\", \"piece\", \"from_device\" and \"allow_tag_mismatch\" apply to restores only, not to a %s", nj.Kind)}
	case kind != grouprestore.KindRestore && kind != grouprestore.KindDrift && (nj.Profile != "" || nj.NoProfile || nj.AsOf != ""):
		return &FieldError{Field: "profile", Problem: fmt.Sprintf("\"profile\", \"no_profile\" and \"as_of\" apply to restores and drifts only, not to a %s", nj.Kind)}
	case kind != grouprestore.KindRestore && (nj.Continuous || nj.Rescan != ""):
		return &FieldError{Field: "continuous", Problem: fmt.Sprintf("applies to restores only, not to a %s", nj.Kind)}
	case nj.Profile != "" && nj.NoProfile:
		return &FieldError{Field: "no_profile", Problem: "excludes \"profile\""}
	}
	asOf, err := ParseAsOf(nj.AsOf)
	if err != nil {
		return &FieldError{Field: "as_of", Problem: err.Error()}
	}
	if !asOf.IsZero() {
		spec.AsOf = asOf.UnixMilli()
	}
	if kind == grouprestore.KindDrift && nj.Source == "" && (nj.Profile != "" || nj.AsOf != "") {
		return &FieldError{Field: "source", Problem: "is required with \"profile\" and \"as_of\": the backup group to compare with; without it each device is compared with its last restore, under that restore's profile"}
	}
	if kind != grouprestore.KindRestore {
		return nil
	}
	if err := continuousFields(nj, spec); err != nil {
		return err
	}
	if !nj.Replacement() {
		if nj.AllowTagMismatch {
			return &FieldError{Field: "allow_tag_mismatch", Problem: "applies to a restore to one device (\"device\" with \"piece\" or \"from_device\")"}
		}
		return nil
	}
	switch {
	case nj.Device == "":
		return &FieldError{Field: "device", Problem: "is required with \"piece\" or \"from_device\": the device to restore to"}
	case (nj.Piece == "") == (nj.FromDevice == ""):
		return &FieldError{Field: "piece", Problem: fmt.Sprintf("a restore to device %q needs exactly one of \"piece\" (a backup id) or \"from_device\" (the device whose newest backup it gets)", nj.Device)}
	case nj.Target != "":
		return &FieldError{Field: "target", Problem: "excludes \"device\": a restore goes to a device group or to one device"}
	case nj.Piece != "" && nj.AsOf != "":
		return &FieldError{Field: "as_of", Problem: "chooses among backups; \"piece\" names one already"}
	}
	spec.Device, spec.AllowTagMismatch = nj.Device, nj.AllowTagMismatch
	return nil
}

// continuousFields fills a continuous restore's fields, refusing what
// cannot stand on a group.
func continuousFields(nj apiclient.NewJob, spec *grouprestore.Spec) error {
	if !nj.Continuous {
		if nj.Rescan != "" {
			return &FieldError{Field: "rescan", Problem: "goes with \"continuous\": true"}
		}
		return nil
	}
	switch {
	case nj.Replacement():
		return &FieldError{Field: "continuous", Problem: "a continuous restore stands on a device group (\"target\"), not on one device"}
	case nj.DryRun:
		return &FieldError{Field: "continuous", Problem: "a dry run cannot be continuous: it plans the group as it is now"}
	}
	spec.Continuous = true
	if nj.Rescan != "" {
		d, err := time.ParseDuration(nj.Rescan)
		if err != nil || d < 100*time.Millisecond {
			return &FieldError{Field: "rescan", Problem: fmt.Sprintf("%q is not a duration of at least 100ms, e.g. \"5s\"", nj.Rescan)}
		}
		spec.Rescan = d
	}
	return nil
}

// replacementPiece chooses a replacement restore's one piece: the piece
// named, or the newest backup of from_device (as of as_of). The caller must
// own the device restored to (checked by the caller) and see the piece. The
// piece's backup group becomes the source, whose profile is the default.
func (ss *Session) replacementPiece(nj apiclient.NewJob, spec *grouprestore.Spec) error {
	if _, err := ss.device(nj.Device); err != nil {
		return err
	}
	asOf := asOfTime(spec.AsOf)
	var p catalog.Piece
	var err error
	if nj.Piece != "" {
		p, err = ss.s.cat.Piece(nj.Piece)
	} else {
		p, err = ss.s.cat.LatestAsOf(nj.FromDevice, "settings", asOf)
	}
	if err == nil && ss.id.owner() {
		devices, groups, serr := ss.ownerScope()
		if serr != nil {
			return serr
		}
		if !ss.id.seesPiece(p, devices, groups) {
			err = catalog.ErrNotFound
		}
	}
	switch {
	case errors.Is(err, catalog.ErrNotFound) && nj.Piece != "":
		return errorf(ErrNotFound, "no backup %q; list them with GET /api/v1/backups", nj.Piece)
	case errors.Is(err, catalog.ErrNotFound):
		return errorf(ErrNotFound, "device %q has no backup%s; list them with GET /api/v1/backups?client=%s", nj.FromDevice, asOfText(asOf), nj.FromDevice)
	case err != nil:
		return fmt.Errorf("choose the backup to restore to %s: %w", nj.Device, err)
	case nj.Source != "" && nj.Source != p.Group:
		return &FieldError{Field: "source", Problem: fmt.Sprintf("backup %s belongs to backup group %q, not %q", p.ID, p.Group, nj.Source)}
	}
	spec.Source, spec.Piece, spec.AsOf = p.Group, p.ID, 0
	return nil
}

// asOfTime turns a spec's AsOf (Unix ms, 0: none) into a time.
func asOfTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

func asOfText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return " at or before " + t.UTC().Format(time.RFC3339)
}

// haveCandidates requires backup group name to hold backups (as of asOf).
func (ss *Session) haveCandidates(name string, asOf time.Time) error {
	cands, err := ss.s.cat.CandidatesAsOf(name, asOf)
	if err != nil {
		return fmt.Errorf("backup group %s: %w", name, err)
	}
	if len(cands) == 0 {
		return errorf(ErrNotFound, "backup group %q has no backups%s%s", name, asOfText(asOf), suggestOr(name, ss.backupGroupNames(), "; run a backup job into it first"))
	}
	return nil
}
