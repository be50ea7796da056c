package api

import (
	"github.com/fleetvault/fleetvault/apiclient"

	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// toRollout parses the text durations, naming the field on error.
func toRollout(ro apiclient.Rollout) (grouprestore.Rollout, error) {
	r := grouprestore.Rollout{Concurrency: ro.Concurrency, Rate: ro.Rate, Canary: ro.Canary, CanaryShare: ro.CanaryShare,
		WaveSize: ro.WaveSize, MaxFailureShare: ro.MaxFailureShare, MinFailures: ro.MinFailures,
		MaxNoMatchShare: ro.MaxNoMatchShare, MinNoMatches: ro.MinNoMatches, ReadBack: ro.ReadBack, Retries: ro.Retries}
	for _, d := range []struct {
		name string
		text string
		dst  *time.Duration
	}{{"timeout", ro.Timeout, &r.Timeout}, {"backoff", ro.Backoff, &r.Backoff}, {"offline_ttl", ro.OfflineTTL, &r.OfflineTTL}} {
		if d.text == "" {
			continue
		}
		v, err := time.ParseDuration(d.text)
		if err != nil || v < 0 {
			return r, errBadRequest("field \"rollout.%s\" must be a duration like \"5s\" or \"200ms\", not %q", d.name, d.text)
		}
		*d.dst = v
	}
	return r, nil
}

func rolloutView(r grouprestore.Rollout) apiclient.Rollout {
	out := apiclient.Rollout{Concurrency: r.Concurrency, Rate: r.Rate, Canary: r.Canary, CanaryShare: r.CanaryShare, WaveSize: r.WaveSize,
		MaxFailureShare: r.MaxFailureShare, MinFailures: r.MinFailures, MaxNoMatchShare: r.MaxNoMatchShare,
		MinNoMatches: r.MinNoMatches, ReadBack: r.ReadBack, Retries: r.Retries}
	if r.Timeout > 0 {
		out.Timeout = r.Timeout.String()
	}
	if r.Backoff > 0 {
		out.Backoff = r.Backoff.String()
	}
	if r.OfflineTTL > 0 {
		out.OfflineTTL = r.OfflineTTL.String()
	}
	return out
}

func jobFromRecord(rec grouprestore.JobRecord) apiclient.Job {
	j := apiclient.Job{ID: rec.ID, Kind: rec.Spec.Kind, Source: rec.Spec.Source, Target: rec.Spec.Target, Policy: rec.Spec.Policy,
		Rollout: rolloutView(rec.Spec.Rollout), State: rec.State, Reason: rec.Reason, Total: rec.Total}
	if rec.Created > 0 {
		t := time.UnixMilli(rec.Created).UTC()
		j.Created = &t
	}
	if rec.Updated > 0 {
		t := time.UnixMilli(rec.Updated).UTC()
		j.Updated = &t
	}
	return j
}

func (s *API) handleListJobs(w http.ResponseWriter, r *http.Request) error {
	recs, err := s.Engine.Jobs()
	if err != nil {
		return fmt.Errorf("read the job journal: %w", err)
	}
	state := r.URL.Query().Get("state")
	out := []apiclient.Job{}
	for _, rec := range recs {
		if state != "" && string(rec.State) != state {
			continue
		}
		out = append(out, jobFromRecord(rec))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *API) handleStartJob(w http.ResponseWriter, r *http.Request) error {
	var nj apiclient.NewJob
	if err := decodeJSON(w, r, &nj); err != nil {
		return err
	}
	spec, err := s.jobSpec(nj)
	if err != nil {
		return err
	}
	if nj.DryRun {
		if spec.Kind != grouprestore.KindRestore {
			return errBadRequest("field \"dry_run\": only a restore has a dry run (it probes and matches, writing nothing); a %s has none", spec.Kind)
		}
		entries, err := s.Engine.Plan(r.Context(), spec)
		if err != nil {
			return s.jobError(err)
		}
		p := apiclient.Plan{DryRun: true, Kind: spec.Kind, Source: spec.Source, Target: spec.Target, Counts: map[grouprestore.State]int{}, Entries: entries}
		for _, e := range entries {
			p.Counts[e.State]++
		}
		if p.Entries == nil {
			p.Entries = []grouprestore.PlanEntry{}
		}
		writeJSON(w, http.StatusOK, p)
		return nil
	}
	// The request's context bounds only the planning; the job itself runs in
	// the engine's context and outlives the request.
	j, err := s.Engine.Start(r.Context(), spec)
	if err != nil {
		return s.jobError(err)
	}
	s.onJob(j)
	s.log.Debug("api: job started", "job", j.ID())
	out, err := s.jobView(j, false)
	if err != nil {
		return err
	}
	w.Header().Set("Location", APIPrefix+"/jobs/"+j.ID())
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// jobSpec checks a job request, naming the field at fault, and that the
// groups it names exist.
func (s *API) jobSpec(nj apiclient.NewJob) (grouprestore.Spec, error) {
	ro, err := toRollout(nj.Rollout)
	if err != nil {
		return grouprestore.Spec{}, err
	}
	spec := grouprestore.Spec{Kind: grouprestore.Kind(nj.Kind), Source: nj.Source, Target: nj.Target, Policy: nj.Policy, Rollout: ro}
	if ro.Retries < 0 {
		return spec, errBadRequest("field \"rollout.retries\" must not be negative")
	}
	if err := spec.Rollout.Validate(); err != nil {
		return spec, errBadRequest("field \"rollout\": %v", err)
	}
	if nj.Policy != "" {
		if _, err := tagmatch.ParsePolicy(nj.Policy); err != nil {
			return spec, errBadRequest("field \"policy\": %v", err)
		}
	}
	if nj.Source == "" {
		return spec, errBadRequest("field \"source\" is required: the device group (backup), backup group (restore) or job id (undo)")
	}
	switch spec.Kind {
	case grouprestore.KindBackup:
		if nj.Target == "" {
			return spec, errBadRequest("field \"target\" is required for a backup: the backup group the pieces go to")
		}
		if _, err := s.members(nj.Source); err != nil {
			return spec, err
		}
	case grouprestore.KindRestore:
		if nj.Target == "" {
			return spec, errBadRequest("field \"target\" is required for a restore: the device group to restore to")
		}
		if _, err := s.members(nj.Target); err != nil {
			return spec, err
		}
		cands, err := s.Catalog.Candidates(nj.Source)
		if err != nil {
			return spec, fmt.Errorf("backup group %s: %w", nj.Source, err)
		}
		if len(cands) == 0 {
			return spec, errNotFound("backup group %q has no backups%s", nj.Source, suggestOr(nj.Source, s.backupGroupNames(), "; run a backup job into it first"))
		}
	case grouprestore.KindUndo:
		if _, err := s.job(nj.Source); err != nil {
			return spec, err
		}
	default:
		return spec, errBadRequest("field \"kind\" must be backup, restore or undo, not %q", nj.Kind)
	}
	return spec, nil
}

// backupGroupNames lists the backup groups that have pieces, and the groups
// of kind backup, for suggestions.
func (s *API) backupGroupNames() []string {
	seen := map[string]bool{}
	var names []string
	if gs, err := s.Catalog.Groups(); err == nil {
		for _, g := range gs {
			if g.Kind == catalog.GroupBackup && !seen[g.Name] {
				seen[g.Name] = true
				names = append(names, g.Name)
			}
		}
	}
	if ps, err := s.Catalog.Pieces(catalog.Query{Limit: 1000}); err == nil {
		for _, p := range ps {
			if p.Group != "" && !seen[p.Group] {
				seen[p.Group] = true
				names = append(names, p.Group)
			}
		}
	}
	return names
}

// jobError maps engine errors to API errors.
func (s *API) jobError(err error) error {
	switch {
	case errors.Is(err, grouprestore.ErrNoJob):
		return errNotFound("%v; list the jobs with GET /api/v1/jobs", err)
	case errors.Is(err, grouprestore.ErrJobFinished):
		return errConflict("%v", err)
	case errors.Is(err, grouprestore.ErrEmptyGroup):
		return errBadRequest("%v: add devices to it first (POST /api/v1/groups/{name}/members)", err)
	case errors.Is(err, catalog.ErrNotFound):
		return errNotFound("%v", err)
	}
	return &apiError{status: http.StatusUnprocessableEntity, msg: err.Error()}
}

func (s *API) job(id string) (*grouprestore.Job, error) {
	j, err := s.Engine.Job(id)
	if err != nil {
		if errors.Is(err, grouprestore.ErrNoJob) {
			var ids []string
			if recs, e := s.Engine.Jobs(); e == nil {
				for _, r := range recs {
					ids = append(ids, r.ID)
				}
			}
			return nil, errNotFound("no job %q%s", id, suggestOr(id, ids, "; list them with GET /api/v1/jobs"))
		}
		return nil, fmt.Errorf("look up job %s: %w", id, err)
	}
	return j, nil
}

// jobView renders a job with its progress and, optionally, its devices.
func (s *API) jobView(j *grouprestore.Job, devices bool) (apiclient.Job, error) {
	p := j.Progress()
	spec := j.Spec()
	out := apiclient.Job{ID: j.ID(), Kind: spec.Kind, Source: spec.Source, Target: spec.Target, Policy: spec.Policy,
		Rollout: rolloutView(spec.Rollout), State: p.State, Reason: p.Reason, Total: p.Total, Progress: &p}
	rv := jobFromRecord(j.Record())
	out.Created, out.Updated = rv.Created, rv.Updated
	if devices {
		out.Devices = j.Devices()
		if out.Devices == nil {
			out.Devices = []grouprestore.DeviceOutcome{}
		}
	}
	return out, nil
}

func (s *API) handleGetJob(w http.ResponseWriter, r *http.Request) error {
	j, err := s.job(r.PathValue("id"))
	if err != nil {
		return err
	}
	out, err := s.jobView(j, r.URL.Query().Get("devices") == "true")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *API) handleCancelJob(w http.ResponseWriter, r *http.Request) error {
	return s.controlJob(w, r, "cancel", (*grouprestore.Job).Cancel)
}

func (s *API) handlePauseJob(w http.ResponseWriter, r *http.Request) error {
	return s.controlJob(w, r, "pause", (*grouprestore.Job).Pause)
}

func (s *API) handleResumeJob(w http.ResponseWriter, r *http.Request) error {
	return s.controlJob(w, r, "resume", (*grouprestore.Job).Resume)
}

// controlJob applies a control to a job that has not ended and answers with
// the job as it then stands.
func (s *API) controlJob(w http.ResponseWriter, r *http.Request, what string, fn func(*grouprestore.Job)) error {
	j, err := s.job(r.PathValue("id"))
	if err != nil {
		return err
	}
	if st := j.Progress().State; st.Final() {
		return errConflict("job %s has already ended (%s); there is nothing to %s", j.ID(), st, what)
	}
	fn(j)
	s.log.Info("job "+what, "job", j.ID())
	out, err := s.jobView(j, false)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// SSE: progress at most every sseInterval, then one end event.
const sseInterval = 250 * time.Millisecond

func (s *API) handleJobEvents(w http.ResponseWriter, r *http.Request) error {
	j, err := s.job(r.PathValue("id"))
	if err != nil {
		return err
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		return errors.New("this connection cannot stream events")
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ch, stop := j.Watch(sseInterval)
	defer stop()
	var last grouprestore.Progress
	seq := 0
	for {
		select {
		case p, ok := <-ch:
			if !ok {
				if !last.State.Final() {
					// The engine stopped (the server is shutting down) and the job
					// stays resumable: close without an end event, so a client
					// knows to watch again rather than think the job ended.
					return nil
				}
				return writeEvent(w, fl, "end", seq, last)
			}
			last = p
			if err := writeEvent(w, fl, "progress", seq, p); err != nil {
				return nil // the client went away
			}
			seq++
		case <-r.Context().Done():
			return nil
		case <-s.ctx.Done():
			return nil // the server is closing
		}
	}
}

// writeEvent writes one Server-Sent Event with a JSON data line.
func writeEvent(w http.ResponseWriter, fl http.Flusher, event string, id int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "event: %s\nid: %d\ndata: %s\n\n", event, id, b); err != nil {
		return err
	}
	fl.Flush()
	return nil
}
