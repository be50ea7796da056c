package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/settingsdoc"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// Rollout is grouprestore.Rollout with durations as text ("5s", "200ms").
type Rollout struct {
	Concurrency     int     `json:"concurrency,omitempty"`
	Rate            float64 `json:"rate,omitempty"`
	Canary          int     `json:"canary,omitempty"`
	CanaryShare     float64 `json:"canary_share,omitempty"`
	WaveSize        int     `json:"wave_size,omitempty"`
	Timeout         string  `json:"timeout,omitempty"`
	Retries         int     `json:"retries,omitempty"`
	Backoff         string  `json:"backoff,omitempty"`
	OfflineTTL      string  `json:"offline_ttl,omitempty"`
	MaxFailureShare float64 `json:"max_failure_share,omitempty"`
	MinFailures     int     `json:"min_failures,omitempty"`
	MaxNoMatchShare float64 `json:"max_nomatch_share,omitempty"`
	MinNoMatches    int     `json:"min_nomatches,omitempty"`
	ReadBack        bool    `json:"read_back,omitempty"`
}

// NewJob is the body of POST /api/v1/jobs.
type NewJob struct {
	Kind    string  `json:"kind"`   // backup, restore, undo or drift
	Source  string  `json:"source"` // restore: backup group; backup: device group; undo: the job to undo
	Target  string  `json:"target"` // restore: device group; backup: backup group
	Policy  string  `json:"policy,omitempty"`
	Rollout Rollout `json:"rollout"`
	DryRun  bool    `json:"dry_run,omitempty"`

	// Profile names the restore profile to apply (default: the one attached
	// to the backup group); NoProfile restores whole documents regardless.
	Profile   string `json:"profile,omitempty"`
	NoProfile bool   `json:"no_profile,omitempty"`

	// AsOf restores each backup current at that time (RFC 3339, or a date:
	// its end). Device with Piece or FromDevice restores one backup to one
	// device (a replacement); AllowTagMismatch writes it even when the tags
	// do not match.
	AsOf             string `json:"as_of,omitempty"`
	Device           string `json:"device,omitempty"`
	Piece            string `json:"piece,omitempty"`
	FromDevice       string `json:"from_device,omitempty"`
	AllowTagMismatch bool   `json:"allow_tag_mismatch,omitempty"`

	// Continuous keeps the restore standing on the device group until it is
	// cancelled; Rescan (e.g. "5s") is how often it reads the group again.
	Continuous bool   `json:"continuous,omitempty"`
	Rescan     string `json:"rescan,omitempty"`
}

// Job is a job as the API shows it.
type Job struct {
	ID       string                       `json:"id"`
	Kind     grouprestore.Kind            `json:"kind"`
	Source   string                       `json:"source"`
	Target   string                       `json:"target"`
	Policy   string                       `json:"policy,omitempty"`
	Rollout  Rollout                      `json:"rollout"`
	State    grouprestore.JobState        `json:"state"`
	Reason   string                       `json:"reason,omitempty"`
	Error    string                       `json:"error,omitempty"` // job-level error while a failing write pauses it
	Created  *time.Time                   `json:"created,omitempty"`
	Updated  *time.Time                   `json:"updated,omitempty"`
	Total    int                          `json:"total"`
	Progress *grouprestore.Progress       `json:"progress,omitempty"`
	Devices  []grouprestore.DeviceOutcome `json:"devices,omitempty"` // with ?devices=true

	Profile *settingsdoc.Profile `json:"profile,omitempty"` // the restore profile applied

	// A restore's choice of version and destination (see NewJob).
	AsOf             *time.Time `json:"as_of,omitempty"`
	Device           string     `json:"device,omitempty"`
	Piece            string     `json:"piece,omitempty"`
	AllowTagMismatch bool       `json:"allow_tag_mismatch,omitempty"`
	Continuous       bool       `json:"continuous,omitempty"`
}

// Plan answers a dry run (POST /api/v1/jobs with dry_run: true).
type Plan struct {
	DryRun  bool                       `json:"dry_run"`
	Kind    grouprestore.Kind          `json:"kind"`
	Source  string                     `json:"source"`
	Target  string                     `json:"target"`
	Counts  map[grouprestore.State]int `json:"counts"`
	Entries []grouprestore.PlanEntry   `json:"entries"`
}

// toRollout parses the text durations, naming the field on error.
func (ro Rollout) toRollout() (grouprestore.Rollout, error) {
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

func rolloutView(r grouprestore.Rollout) Rollout {
	out := Rollout{Concurrency: r.Concurrency, Rate: r.Rate, Canary: r.Canary, CanaryShare: r.CanaryShare, WaveSize: r.WaveSize,
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

func jobFromRecord(rec grouprestore.JobRecord) Job {
	j := Job{ID: rec.ID, Kind: rec.Spec.Kind, Source: rec.Spec.Source, Target: rec.Spec.Target, Policy: rec.Spec.Policy,
		Rollout: rolloutView(rec.Spec.Rollout), State: rec.State, Reason: rec.Reason, Total: rec.Total}
	j.Profile, j.Device, j.Piece, j.AllowTagMismatch = rec.Spec.Profile, rec.Spec.Device, rec.Spec.Piece, rec.Spec.AllowTagMismatch
	j.Continuous = rec.Spec.Continuous
	if rec.Spec.AsOf != 0 {
		t := time.UnixMilli(rec.Spec.AsOf).UTC()
		j.AsOf = &t
	}
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

func (s *Server) handleListJobs(w http.ResponseWriter, r *http.Request) error {
	recs, err := s.Engine.Jobs()
	if err != nil {
		return fmt.Errorf("read the job journal: %w", err)
	}
	state := r.URL.Query().Get("state")
	out := []Job{}
	for _, rec := range recs {
		if state != "" && string(rec.State) != state {
			continue
		}
		v := jobFromRecord(rec)
		s.liveProgress(&v)
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleStartJob(w http.ResponseWriter, r *http.Request) error {
	var nj NewJob
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
		p := Plan{DryRun: true, Kind: spec.Kind, Source: spec.Source, Target: spec.Target, Counts: map[grouprestore.State]int{}, Entries: entries}
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
	s.api.metrics.track(j)
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
func (s *Server) jobSpec(nj NewJob) (grouprestore.Spec, error) {
	ro, err := nj.Rollout.toRollout()
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
	if err := checkRestoreFields(nj, spec.Kind); err != nil {
		return spec, err
	}
	if spec.Kind == grouprestore.KindRestore {
		if err := s.restoreChoice(&nj, &spec); err != nil {
			return spec, err
		}
		if err := continuousChoice(nj, &spec); err != nil {
			return spec, err
		}
		if nj.replacementRequest() {
			spec.Profile, err = s.jobProfile(nj)
			return spec, err
		}
	}
	if nj.Source == "" && spec.Kind != grouprestore.KindDrift {
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
		cands, err := s.Catalog.CandidatesAsOf(nj.Source, asOfTime(spec.AsOf))
		if err != nil {
			return spec, fmt.Errorf("backup group %s: %w", nj.Source, err)
		}
		if len(cands) == 0 {
			return spec, errNotFound("backup group %q has no backups%s%s", nj.Source, asOfText(asOfTime(spec.AsOf)), suggestOr(nj.Source, s.backupGroupNames(), "; run a backup job into it first"))
		}
		if spec.Profile, err = s.jobProfile(nj); err != nil {
			return spec, err
		}
	case grouprestore.KindUndo:
		if _, err := s.job(nj.Source); err != nil {
			return spec, err
		}
	case grouprestore.KindDrift:
		return spec, s.driftSpec(nj, &spec)
	default:
		return spec, errBadRequest("field \"kind\" must be backup, restore, undo or drift, not %q", nj.Kind)
	}
	return spec, nil
}

// backupGroupNames lists the backup groups that have pieces, and the groups
// of kind backup, for suggestions.
func (s *Server) backupGroupNames() []string {
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
func (s *Server) jobError(err error) error {
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

func (s *Server) job(id string) (*grouprestore.Job, error) {
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
func (s *Server) jobView(j *grouprestore.Job, devices bool) (Job, error) {
	p := j.Progress()
	spec := j.Spec()
	out := Job{ID: j.ID(), Kind: spec.Kind, Source: spec.Source, Target: spec.Target, Policy: spec.Policy,
		Rollout: rolloutView(spec.Rollout), State: p.State, Reason: p.Reason, Error: p.Error, Total: p.Total, Progress: &p}
	rv := jobFromRecord(j.Record())
	out.Created, out.Updated, out.Profile = rv.Created, rv.Updated, rv.Profile
	out.AsOf, out.Device, out.Piece, out.AllowTagMismatch, out.Continuous = rv.AsOf, rv.Device, rv.Piece, rv.AllowTagMismatch, rv.Continuous
	if devices {
		out.Devices = j.Devices()
		if out.Devices == nil {
			out.Devices = []grouprestore.DeviceOutcome{}
		}
	}
	return out, nil
}

func (s *Server) handleGetJob(w http.ResponseWriter, r *http.Request) error {
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

func (s *Server) handleCancelJob(w http.ResponseWriter, r *http.Request) error {
	return s.controlJob(w, r, "cancel", (*grouprestore.Job).Cancel)
}

func (s *Server) handlePauseJob(w http.ResponseWriter, r *http.Request) error {
	return s.controlJob(w, r, "pause", (*grouprestore.Job).Pause)
}

func (s *Server) handleResumeJob(w http.ResponseWriter, r *http.Request) error {
	return s.controlJob(w, r, "resume", (*grouprestore.Job).Resume)
}

// controlJob applies a control to a job that has not ended and answers with
// the job as it then stands.
func (s *Server) controlJob(w http.ResponseWriter, r *http.Request, what string, fn func(*grouprestore.Job)) error {
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

func (s *Server) handleJobEvents(w http.ResponseWriter, r *http.Request) error {
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
		case <-s.api.ctx.Done():
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
