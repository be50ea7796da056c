package server

import (
	"errors"
	"fmt"
	"time"

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

// replacementRequest reports whether a restore request names one device.
func (nj NewJob) replacementRequest() bool {
	return nj.Device != "" || nj.Piece != "" || nj.FromDevice != ""
}

// restoreChoice fills a restore spec's version (as_of) and, for a
// replacement restore, its piece and device: the piece given, or the newest
// backup of from_device (as of as_of). The piece's backup group becomes the
// source, whose profile is the default.
func (s *Server) restoreChoice(nj *NewJob, spec *grouprestore.Spec) error {
	asOf, err := ParseAsOf(nj.AsOf)
	if err != nil {
		return errBadRequest("field \"as_of\": %v", err)
	}
	if !asOf.IsZero() {
		spec.AsOf = asOf.UnixMilli()
	}
	if !nj.replacementRequest() {
		if nj.AllowTagMismatch {
			return errBadRequest("field \"allow_tag_mismatch\" applies to a restore to one device (\"device\" with \"piece\" or \"from_device\")")
		}
		return nil
	}
	switch {
	case nj.Device == "":
		return errBadRequest("field \"device\" is required with \"piece\" or \"from_device\": the device to restore to")
	case (nj.Piece == "") == (nj.FromDevice == ""):
		return errBadRequest("a restore to device %q needs exactly one of \"piece\" (a backup id) or \"from_device\" (the device whose newest backup it gets)", nj.Device)
	case nj.Target != "":
		return errBadRequest("field \"target\" (a device group) and \"device\" exclude each other")
	case nj.Piece != "" && nj.AsOf != "":
		return errBadRequest("field \"as_of\" chooses among backups; \"piece\" names one already")
	}
	if _, err := s.device(nj.Device); err != nil {
		return err
	}
	var p catalog.Piece
	if nj.Piece != "" {
		if p, err = s.Catalog.Piece(nj.Piece); errors.Is(err, catalog.ErrNotFound) {
			return errNotFound("no backup %q; list them with GET /api/v1/backups", nj.Piece)
		}
	} else if p, err = s.Catalog.LatestAsOf(nj.FromDevice, "settings", asOf); errors.Is(err, catalog.ErrNotFound) {
		return errNotFound("device %q has no backup%s; list them with GET /api/v1/backups?client=%s", nj.FromDevice, asOfText(asOf), nj.FromDevice)
	}
	if err != nil {
		return fmt.Errorf("choose the backup to restore to %s: %w", nj.Device, err)
	}
	if nj.Source != "" && nj.Source != p.Group {
		return errBadRequest("backup %s belongs to backup group %q, not %q", p.ID, p.Group, nj.Source)
	}
	nj.Source = p.Group
	spec.Source, spec.Piece, spec.Device, spec.AllowTagMismatch, spec.AsOf = p.Group, p.ID, nj.Device, nj.AllowTagMismatch, 0
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

// continuousChoice fills a continuous restore's fields, refusing what cannot
// stand on a group.
func continuousChoice(nj NewJob, spec *grouprestore.Spec) error {
	if !nj.Continuous {
		if nj.Rescan != "" {
			return errBadRequest("field \"rescan\" goes with \"continuous\": true")
		}
		return nil
	}
	switch {
	case nj.replacementRequest():
		return errBadRequest("a continuous restore stands on a device group (\"target\"), not on one device")
	case nj.DryRun:
		return errBadRequest("a dry run cannot be continuous: it plans the group as it is now")
	}
	spec.Continuous = true
	if nj.Rescan != "" {
		d, err := time.ParseDuration(nj.Rescan)
		if err != nil || d < 100*time.Millisecond {
			return errBadRequest("field \"rescan\": %q is not a duration of at least 100ms, e.g. \"5s\"", nj.Rescan)
		}
		spec.Rescan = d
	}
	return nil
}
