package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// JobSpec checks a job request once, naming the field at fault with a
// FieldError, and returns the engine's spec. It reads nothing: whether the
// groups exist, and whether the caller may use them, StartJob decides.
func JobSpec(nj apiclient.NewJob) (grouprestore.Spec, error) {
	ro, err := toRollout(nj.Rollout)
	if err != nil {
		return grouprestore.Spec{}, err
	}
	spec := grouprestore.Spec{Kind: grouprestore.Kind(nj.Kind), Source: nj.Source, Target: nj.Target, Policy: nj.Policy, Rollout: ro}
	if ro.Retries < 0 {
		return spec, &FieldError{Field: "rollout.retries", Problem: "must not be negative"}
	}
	if err := spec.Rollout.Validate(); err != nil {
		return spec, &FieldError{Field: "rollout", Problem: err.Error()}
	}
	if nj.Policy != "" {
		if _, err := tagmatch.ParsePolicy(nj.Policy); err != nil {
			return spec, &FieldError{Field: "policy", Problem: err.Error()}
		}
	}
	switch spec.Kind {
	case grouprestore.KindBackup:
		if nj.Target == "" {
			return spec, &FieldError{Field: "target", Problem: "is required for a backup: the backup group the pieces go to"}
		}
	case grouprestore.KindRestore:
		if nj.Target == "" && !nj.Replacement() {
			return spec, &FieldError{Field: "target", Problem: "is required for a restore: the device group to restore to (or \"device\" with \"piece\" or \"from_device\": one device)"}
		}
	case grouprestore.KindDrift:
		if nj.Target == "" {
			return spec, &FieldError{Field: "target", Problem: "is required for a drift: the device group to check"}
		}
	case grouprestore.KindUndo:
	default:
		return spec, &FieldError{Field: "kind", Problem: fmt.Sprintf("must be backup, restore, undo or drift, not %q", nj.Kind)}
	}
	if nj.Source == "" && spec.Kind != grouprestore.KindDrift && !(spec.Kind == grouprestore.KindRestore && nj.Replacement()) {
		return spec, &FieldError{Field: "source", Problem: "is required: the device group (backup), backup group (restore) or job id (undo)"}
	}
	if err := restoreFields(nj, &spec); err != nil {
		return spec, err
	}
	if nj.DryRun && spec.Kind != grouprestore.KindRestore {
		return spec, &FieldError{Field: "dry_run", Problem: fmt.Sprintf("only a restore has a dry run (it probes and matches, writing nothing); a %s has none", spec.Kind)}
	}
	return spec, nil
}

// StartJob starts a backup, restore or undo job. An owner may start one only
// on groups assigned to them whose every device is theirs: a job that would
// reach one device of someone else is refused whole, before any device is
// contacted. The job runs in the engine and outlives ctx.
func (ss *Session) StartJob(ctx context.Context, nj apiclient.NewJob) (apiclient.Job, error) {
	var out apiclient.Job
	err := ss.audited("job.start", jobObjects(nj), func() error {
		var err error
		out, err = ss.startJob(ctx, nj, "")
		return err
	})
	return out, err
}

// startJob is StartJob without its audit entry, for an operation that
// audits the job as part of itself (a schedule's run, which names itself in
// schedule; "" for a person's job).
func (ss *Session) startJob(ctx context.Context, nj apiclient.NewJob, schedule string) (apiclient.Job, error) {
	spec, err := ss.checkJob(nj)
	if err != nil {
		return apiclient.Job{}, err
	}
	spec.Schedule = schedule
	j, err := ss.s.eng.Start(ctx, spec)
	if err != nil {
		return apiclient.Job{}, jobError(err)
	}
	ss.s.onJob(j)
	ss.s.log.Info("job started", "job", j.ID(), "kind", spec.Kind, "user", ss.id.User)
	return jobView(j, false), nil
}

// jobObjects names what a job request touches, for the audit log: its kind
// and groups, and for a restore to one device the device, the backup and an
// allowed tag mismatch.
func jobObjects(nj apiclient.NewJob) []string {
	objs := []string{nj.Kind, nj.Source, nj.Target}
	for _, o := range []struct{ name, v string }{{"device", nj.Device}, {"piece", nj.Piece}, {"from_device", nj.FromDevice}, {"profile", nj.Profile}, {"as_of", nj.AsOf}} {
		if o.v != "" {
			objs = append(objs, o.name+"="+o.v)
		}
	}
	if nj.AllowTagMismatch {
		objs = append(objs, "allow_tag_mismatch")
	}
	return objs
}

// PlanJob is a restore's dry run: which device would get which backup. It
// probes the target devices and writes nothing, under the same rules as
// StartJob.
func (ss *Session) PlanJob(ctx context.Context, nj apiclient.NewJob) (apiclient.Plan, error) {
	nj.DryRun = true
	spec, err := ss.checkJob(nj)
	if err != nil {
		return apiclient.Plan{}, err
	}
	entries, err := ss.s.eng.Plan(ctx, spec)
	if err != nil {
		return apiclient.Plan{}, jobError(err)
	}
	p := apiclient.Plan{DryRun: true, Kind: spec.Kind, Source: spec.Source, Target: spec.Target, Counts: map[grouprestore.State]int{}, Entries: entries}
	for _, e := range entries {
		p.Counts[e.State]++
	}
	if p.Entries == nil {
		p.Entries = []grouprestore.PlanEntry{}
	}
	return p, nil
}

// checkJob validates a job request and authorizes it for the caller.
func (ss *Session) checkJob(nj apiclient.NewJob) (grouprestore.Spec, error) {
	if ss.s.eng == nil {
		return grouprestore.Spec{}, errorf(ErrUnprocessable, "jobs run in the server: start one with fleetvault serve")
	}
	spec, err := JobSpec(nj)
	if err != nil {
		return spec, err
	}
	switch spec.Kind {
	case grouprestore.KindBackup:
		if err := ss.jobGroup(spec.Source, true); err != nil {
			return spec, err
		}
		if ss.id.owner() {
			if err := ss.ownedGroup(spec.Target); err != nil {
				return spec, err
			}
		}
	case grouprestore.KindRestore:
		if nj.Replacement() {
			if err := ss.replacementPiece(nj, &spec); err != nil {
				return spec, err
			}
			var err error
			spec.Profile, err = ss.jobProfile(nj, spec.Source)
			return spec, err
		}
		if err := ss.jobGroup(spec.Target, true); err != nil {
			return spec, err
		}
		return spec, ss.backupSource(nj, &spec)
	case grouprestore.KindDrift:
		if err := ss.jobGroup(spec.Target, true); err != nil {
			return spec, err
		}
		if spec.Source == "" {
			return spec, nil // each device against its last restore
		}
		return spec, ss.backupSource(nj, &spec)
	case grouprestore.KindUndo:
		j, err := ss.job(spec.Source)
		if err != nil {
			return spec, err
		}
		if err := ss.ownsDevicesOf(j); err != nil {
			return spec, err
		}
	}
	return spec, nil
}

// backupSource checks the backup group a restore or a drift reads: the
// caller's (for an owner), holding backups as of the spec's time; and sets
// the spec's profile.
func (ss *Session) backupSource(nj apiclient.NewJob, spec *grouprestore.Spec) error {
	if ss.id.owner() {
		if err := ss.ownedGroup(spec.Source); err != nil {
			return err
		}
	}
	if err := ss.haveCandidates(spec.Source, asOfTime(spec.AsOf)); err != nil {
		return err
	}
	var err error
	spec.Profile, err = ss.jobProfile(nj, spec.Source)
	return err
}

// jobGroup checks that a job's device group exists and that the caller may
// see it and, for an owner, that every member is theirs.
func (ss *Session) jobGroup(name string, devices bool) error {
	_, members, err := ss.groupMembers(name)
	if err != nil || !devices || !ss.id.owner() {
		return err
	}
	var foreign []string
	for _, m := range members {
		if !m.Found || !ss.id.ownsDevice(m.Device) {
			foreign = append(foreign, m.ID)
		}
	}
	if len(foreign) > 0 {
		return ss.id.forbid(fmt.Sprintf("run a job on group %q: %d of its devices are not assigned to you; the whole job is refused", name, len(foreign)))
	}
	return nil
}

// ownedGroup requires the backup group name to be assigned to the caller.
func (ss *Session) ownedGroup(name string) error {
	g, err := ss.s.cat.Group(name)
	if err != nil || !ss.id.ownsGroup(g) {
		return errorf(ErrNotFound, "no backup group %q%s", name, suggestOr(name, ss.groupNames(), "; list them with GET /api/v1/groups"))
	}
	return nil
}

// ownsDevicesOf requires every device of job j to be the caller's.
func (ss *Session) ownsDevicesOf(j *grouprestore.Job) error {
	if !ss.id.owner() {
		return nil
	}
	ids := []string{}
	for _, d := range j.Devices() {
		ids = append(ids, d.Device)
	}
	owners, err := ss.s.cat.DeviceOwners(ids)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if owners[id] != ss.id.User {
			return ss.id.forbid(fmt.Sprintf("undo job %s: device %q is not assigned to you; the whole job is refused", j.ID(), id))
		}
	}
	return nil
}

// backupGroupNames lists the backup groups that have pieces, and the groups
// of kind backup, that the caller may see, for suggestions.
func (ss *Session) backupGroupNames() []string {
	seen := map[string]bool{}
	var names []string
	gs, _ := ss.s.cat.Groups()
	for _, g := range gs {
		if g.Kind == catalog.GroupBackup && ss.id.ownsGroup(g) && !seen[g.Name] {
			seen[g.Name] = true
			names = append(names, g.Name)
		}
	}
	if ss.id.owner() {
		return names
	}
	if ps, err := ss.s.cat.Pieces(catalog.Query{Limit: 1000}); err == nil {
		for _, p := range ps {
			if p.Group != "" && !seen[p.Group] {
				seen[p.Group] = true
				names = append(names, p.Group)
			}
		}
	}
	return names
}

// jobError maps the engine's errors to the service's kinds.
func jobError(err error) error {
	switch {
	case errors.Is(err, grouprestore.ErrNoJob):
		return errorf(ErrNotFound, "%v; list the jobs with GET /api/v1/jobs", err)
	case errors.Is(err, grouprestore.ErrJobFinished):
		return errorf(ErrConflict, "%v", err)
	case errors.Is(err, grouprestore.ErrEmptyGroup):
		return errorf(ErrInvalid, "%v: add devices to it first (POST /api/v1/groups/{name}/members)", err)
	case errors.Is(err, catalog.ErrNotFound):
		return errorf(ErrNotFound, "%v", err)
	}
	return errorf(ErrUnprocessable, "%v", err)
}

// Jobs lists the jobs the caller may see, in the journal's order.
func (ss *Session) Jobs(ctx context.Context) ([]apiclient.Job, error) {
	return ss.ListJobs(ctx, "")
}

// ListJobs lists the jobs in state ("" any) the caller may see.
func (ss *Session) ListJobs(_ context.Context, state string) ([]apiclient.Job, error) {
	if ss.s.eng == nil {
		return nil, errorf(ErrUnprocessable, "jobs run in the server: start one with fleetvault serve")
	}
	recs, err := ss.s.eng.Jobs()
	if err != nil {
		return nil, fmt.Errorf("read the job journal: %w", err)
	}
	var devices, groups map[string]bool
	if ss.id.owner() {
		if devices, groups, err = ss.ownerScope(); err != nil {
			return nil, err
		}
	}
	out := []apiclient.Job{}
	for _, rec := range recs {
		if (state != "" && string(rec.State) != state) || !ss.seesJob(rec.Spec, devices, groups, 0) {
			continue
		}
		v := jobFromRecord(rec)
		ss.liveProgress(&v)
		out = append(out, v)
	}
	return out, nil
}

// seesJob: an owner sees the jobs between groups assigned to them (a
// restore to one device: that device, from a backup group of theirs; a drift
// against last restores: its device group), and the undo jobs of those.
func (ss *Session) seesJob(spec grouprestore.Spec, devices, groups map[string]bool, depth int) bool {
	switch {
	case !ss.id.owner():
		return true
	case spec.Kind == grouprestore.KindUndo:
		j, err := ss.s.eng.Job(spec.Source)
		return err == nil && depth < 16 && ss.seesJob(j.Spec(), devices, groups, depth+1)
	case spec.Device != "":
		return devices[spec.Device] && groups[spec.Source]
	case spec.Kind == grouprestore.KindDrift && spec.Source == "":
		return groups[spec.Target]
	}
	return groups[spec.Source] && groups[spec.Target]
}

// JobHandle returns a running or finished job the caller may see, for
// watching its progress.
func (ss *Session) JobHandle(_ context.Context, id string) (*grouprestore.Job, error) {
	return ss.job(id)
}

// Job returns a job with its progress; with devices, every device's outcome.
func (ss *Session) Job(_ context.Context, id string, devices bool) (apiclient.Job, error) {
	j, err := ss.job(id)
	if err != nil {
		return apiclient.Job{}, err
	}
	return jobView(j, devices), nil
}

// CancelJob, PauseJob and ResumeJob control a job the caller may see that
// has not ended, and return it as it then stands.
func (ss *Session) CancelJob(_ context.Context, id string) (apiclient.Job, error) {
	return ss.controlJob("cancel", id, (*grouprestore.Job).Cancel)
}

// PauseJob stops a job starting devices until ResumeJob.
func (ss *Session) PauseJob(_ context.Context, id string) (apiclient.Job, error) {
	return ss.controlJob("pause", id, (*grouprestore.Job).Pause)
}

// ResumeJob lets a paused job go on.
func (ss *Session) ResumeJob(_ context.Context, id string) (apiclient.Job, error) {
	return ss.controlJob("resume", id, (*grouprestore.Job).Resume)
}

func (ss *Session) controlJob(what, id string, fn func(*grouprestore.Job)) (apiclient.Job, error) {
	var out apiclient.Job
	err := ss.audited("job."+what, []string{id}, func() error {
		j, err := ss.job(id)
		if err != nil {
			return err
		}
		if st := j.Progress().State; st.Final() {
			return errorf(ErrConflict, "job %s has already ended (%s); there is nothing to %s", j.ID(), st, what)
		}
		fn(j)
		ss.s.log.Info("job "+what, "job", j.ID(), "user", ss.id.User)
		out = jobView(j, false)
		return nil
	})
	return out, err
}

// job looks up a job the caller may see, or returns ErrNotFound suggesting
// the closest id among those they may see.
func (ss *Session) job(id string) (*grouprestore.Job, error) {
	if ss.s.eng == nil {
		return nil, errorf(ErrUnprocessable, "jobs run in the server: start one with fleetvault serve")
	}
	j, err := ss.s.eng.Job(id)
	if err == nil && ss.id.owner() {
		devices, groups, serr := ss.ownerScope()
		if serr != nil {
			return nil, serr
		}
		if !ss.seesJob(j.Spec(), devices, groups, 0) {
			err = grouprestore.ErrNoJob
		}
	}
	if errors.Is(err, grouprestore.ErrNoJob) {
		var ids []string
		if recs, e := ss.ListJobs(context.Background(), ""); e == nil {
			for _, r := range recs {
				ids = append(ids, r.ID)
			}
		}
		return nil, errorf(ErrNotFound, "no job %q%s", id, suggestOr(id, ids, "; list them with GET /api/v1/jobs"))
	}
	if err != nil {
		return nil, fmt.Errorf("look up job %s: %w", id, err)
	}
	return j, nil
}

// jobView renders a job with its progress and, optionally, its devices.
func jobView(j *grouprestore.Job, devices bool) apiclient.Job {
	p := j.Progress()
	spec := j.Spec()
	out := apiclient.Job{ID: j.ID(), Kind: spec.Kind, Source: spec.Source, Target: spec.Target, Policy: spec.Policy,
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
	return out
}

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
			return r, &FieldError{Field: "rollout." + d.name, Problem: fmt.Sprintf("must be a duration like \"5s\" or \"200ms\", not %q", d.text)}
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

// liveProgress adds a running job's counts to its listing (a continuous
// restore runs until stopped: its counts are what it has done so far).
func (ss *Session) liveProgress(v *apiclient.Job) {
	if v.State.Final() {
		return
	}
	if j, err := ss.s.eng.Job(v.ID); err == nil {
		p := j.Progress()
		v.Progress, v.Total, v.Error = &p, p.Total, p.Error
	}
}

// RemediateJob starts the restores that bring a finished drift job's
// drifted devices back, limited to them, with every safeguard of a restore;
// none when nothing drifted. The caller must see the drift job.
func (ss *Session) RemediateJob(ctx context.Context, id string) ([]apiclient.Job, error) {
	out := []apiclient.Job{}
	err := ss.audited("job.remediate", []string{id}, func() error {
		j, err := ss.job(id)
		if err != nil {
			return err
		}
		if j.Spec().Kind != grouprestore.KindDrift {
			return errorf(ErrInvalid, "job %s is a %s; only drift jobs are remediated", j.ID(), j.Spec().Kind)
		}
		if st := j.Record().State; !st.Final() {
			return errorf(ErrConflict, "drift job %s is still %s; remediate it once it has ended", j.ID(), st)
		}
		specs, err := ss.s.eng.Remediation(j.ID())
		if err != nil {
			return errorf(ErrInvalid, "%v", err)
		}
		for _, spec := range specs {
			rj, err := ss.s.eng.Start(ctx, spec)
			if err != nil {
				return jobError(err)
			}
			ss.s.onJob(rj)
			out = append(out, jobView(rj, false))
		}
		return nil
	})
	return out, err
}
