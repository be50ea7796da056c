package server

import (
	"fmt"
	"net/http"

	"github.com/fleetvault/fleetvault/grouprestore"
)

// checkRestoreFields refuses the fields of restores (and drifts) on other kinds.
func checkRestoreFields(nj NewJob, kind grouprestore.Kind) error {
	switch {
	case kind == grouprestore.KindRestore:
		return nil
	case (nj.replacementRequest() || nj.AllowTagMismatch) && kind != grouprestore.KindRestore:
		return errBadRequest("fields \"device\", \"piece\", \"from_device\" and \"allow_tag_mismatch\" apply to restores only, not to a %s", nj.Kind)
	case (nj.Profile != "" || nj.NoProfile || nj.AsOf != "") && kind != grouprestore.KindDrift:
		return errBadRequest("fields \"profile\", \"no_profile\" and \"as_of\" apply to restores and drifts only, not to a %s", nj.Kind)
	}
	return nil
}

// driftSpec checks a drift request: the device group to check (target) and,
// optionally, the backup group to compare with (source, as of as_of, with
// its profile); without one, each device is compared with its last restore.
func (s *Server) driftSpec(nj NewJob, spec *grouprestore.Spec) error {
	if nj.Target == "" {
		return errBadRequest("field \"target\" is required for a drift: the device group to check")
	}
	if _, err := s.members(nj.Target); err != nil {
		return err
	}
	if nj.Source == "" {
		if nj.Profile != "" || nj.AsOf != "" {
			return errBadRequest("fields \"profile\" and \"as_of\" need \"source\" (the backup group to compare with); without it each device is compared with its last restore, under that restore's profile")
		}
		return nil
	}
	asOf, err := ParseAsOf(nj.AsOf)
	if err != nil {
		return errBadRequest("field \"as_of\": %v", err)
	}
	if !asOf.IsZero() {
		spec.AsOf = asOf.UnixMilli()
	}
	cands, err := s.Catalog.CandidatesAsOf(nj.Source, asOf)
	if err != nil {
		return fmt.Errorf("backup group %s: %w", nj.Source, err)
	}
	if len(cands) == 0 {
		return errNotFound("backup group %q has no backups%s%s", nj.Source, asOfText(asOf), suggestOr(nj.Source, s.backupGroupNames(), "; run a backup job into it first"))
	}
	spec.Profile, err = s.jobProfile(nj)
	return err
}

// handleRemediate starts the restores that bring a finished drift job's
// drifted devices back (POST /api/v1/jobs/{id}/remediate).
func (s *Server) handleRemediate(w http.ResponseWriter, r *http.Request) error {
	j, err := s.job(r.PathValue("id"))
	if err != nil {
		return err
	}
	if j.Spec().Kind != grouprestore.KindDrift {
		return errBadRequest("job %s is a %s; only drift jobs are remediated", j.ID(), j.Spec().Kind)
	}
	if !j.Record().State.Final() {
		return &apiError{status: http.StatusConflict, msg: fmt.Sprintf("drift job %s is still %s; remediate it once it has ended", j.ID(), j.Record().State)}
	}
	specs, err := s.Engine.Remediation(j.ID())
	if err != nil {
		return errBadRequest("%v", err)
	}
	out := []Job{}
	for _, spec := range specs {
		rj, err := s.Engine.Start(r.Context(), spec)
		if err != nil {
			return s.jobError(err)
		}
		s.api.metrics.track(rj)
		v, err := s.jobView(rj, false)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	status := http.StatusOK
	if len(out) > 0 {
		status = http.StatusCreated
	}
	writeJSON(w, status, out)
	return nil
}

// liveProgress adds a running job's counts to its listing (a continuous
// restore runs until stopped: its counts are what it has done so far).
func (s *Server) liveProgress(v *Job) {
	if v.State.Final() {
		return
	}
	if j, err := s.Engine.Job(v.ID); err == nil {
		p := j.Progress()
		v.Progress, v.Total = &p, p.Total
	}
}
