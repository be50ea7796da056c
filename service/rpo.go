package service

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/notify"
	"github.com/fleetvault/fleetvault/schedule"
)

// outcomeError is a run's outcome when no backup job could start.
const outcomeError = "error"

// RunScheduled is one run of the scheduler (schedule.RunFunc's work): as
// SchedulerIdentity it backs up the schedule's device group into its
// backup group, waits for the job, applies the backup group's retention
// when the job is done, records the run on the schedule and checks the
// RPOs. The job's spec names the schedule (grouprestore.Spec.Schedule), so
// whoever follows every job's end (Options.OnJob: the server's
// notifications) tells people of a failed scheduled job once, naming it.
func (s *Service) RunScheduled(ctx context.Context, r schedule.Run) (apiclient.ScheduleRun, error) {
	sc, err := s.cat.Schedule(r.Schedule)
	if err != nil {
		return apiclient.ScheduleRun{}, fmt.Errorf("scheduled run of %s: %w", r.Schedule, err)
	}
	return s.As(SchedulerIdentity()).runSchedule(ctx, sc, r.Slot)
}

// runSchedule is a run of sc for slot, by the caller (the scheduler, or a
// person's run-now), audited as "schedule.run".
func (ss *Session) runSchedule(ctx context.Context, sc catalog.Schedule, slot time.Time) (apiclient.ScheduleRun, error) {
	run := apiclient.ScheduleRun{Slot: slot.UTC()}
	err := ss.audited("schedule.run", []string{sc.Name, run.Slot.Format(time.RFC3339)}, func() error {
		err := ss.backupAndPrune(ctx, sc, &run)
		if rerr := ss.s.cat.RecordScheduleRun(sc.Name, catalog.ScheduleRun{Slot: run.Slot, Job: run.Job, Outcome: run.Outcome, Pruned: run.Pruned}); rerr != nil && err == nil {
			err = fmt.Errorf("schedule %s ran (job %s, %s) but its run could not be recorded: %w", sc.Name, run.Job, run.Outcome, rerr)
		}
		return err
	})
	ss.s.log.Info("schedule ran", "schedule", sc.Name, "slot", run.Slot, "job", run.Job, "outcome", run.Outcome, "pruned", run.Pruned, "user", ss.id.User)
	if _, cerr := ss.s.CheckRPO(ctx); cerr != nil {
		ss.s.log.Error("RPO check after a run failed", "schedule", sc.Name, "err", cerr)
	}
	return run, err
}

// backupAndPrune runs the backup job of sc, waits for it and, when it is
// done, applies the backup group's retention; run says what happened.
func (ss *Session) backupAndPrune(ctx context.Context, sc catalog.Schedule, run *apiclient.ScheduleRun) error {
	job, err := ss.startJob(ctx, apiclient.NewJob{Kind: string(grouprestore.KindBackup), Source: sc.DeviceGroup, Target: sc.BackupGroup}, sc.Name)
	if err != nil {
		run.Outcome, run.Detail = outcomeError, err.Error()
		return err
	}
	run.Job = job.ID
	j, err := ss.s.eng.Job(job.ID)
	if err != nil {
		run.Outcome, run.Detail = outcomeError, err.Error()
		return fmt.Errorf("schedule %s: follow job %s: %w", sc.Name, job.ID, err)
	}
	p, err := j.Wait(ctx)
	run.Outcome = string(p.State)
	if err != nil {
		run.Detail = "the run was interrupted before its job ended; the job goes on, and retention waits for the next run"
		return fmt.Errorf("schedule %s: job %s: %w", sc.Name, job.ID, err)
	}
	switch p.State {
	case grouprestore.JobFailed, grouprestore.JobAborted:
		// People are told of the job's end by whoever follows every job
		// (the server's onJob: notifications), with the schedule's name
		// from the job's spec; telling them here too would tell them twice.
		run.Detail = p.Reason
		return nil
	case grouprestore.JobDone:
	default: // cancelled by a person: nothing to prune after
		run.Detail = p.Reason
		return nil
	}
	rep, _, err := ss.s.retention(ctx, sc.BackupGroup, false)
	run.Pruned = len(rep.Removed)
	if err != nil {
		run.Detail = err.Error()
	}
	return err
}

// CheckRPO evaluates the RPO of every device of every schedule that has
// one, tells the sink (notify.RPOMissed) of each device that newly missed
// it, once: a device is told again only after it met the objective again;
// who was told is kept on the schedule, so a restart tells nobody twice.
// It returns every device's status, by schedule then device, and hands
// them to Options.OnRPO.
func (s *Service) CheckRPO(_ context.Context) ([]apiclient.RPOStatus, error) {
	s.rpoMu.Lock()
	defer s.rpoMu.Unlock()
	all, err := s.cat.Schedules()
	if err != nil {
		return nil, fmt.Errorf("check RPOs: read the schedules: %w", err)
	}
	now := s.now()
	out := []apiclient.RPOStatus{}
	err = s.eachRPO(all, now, func(sc catalog.Schedule, st []apiclient.RPOStatus) error {
		if err := s.tellMisses(sc, st, now); err != nil {
			return err
		}
		out = append(out, st...)
		return nil
	})
	if err != nil {
		return out, err
	}
	s.onRPO(out)
	return out, nil
}

// eachRPO calls fn with the RPO status of the devices of each schedule of
// scs that has an RPO, at now. A schedule whose groups cannot be read (its
// device group was deleted) is logged and left out, so one does not stop
// the others.
func (s *Service) eachRPO(scs []catalog.Schedule, now time.Time, fn func(catalog.Schedule, []apiclient.RPOStatus) error) error {
	for _, sc := range scs {
		if sc.RPO <= 0 {
			continue
		}
		st, err := s.rpoOf(sc, now)
		if err != nil {
			s.log.Warn("RPO of a schedule cannot be checked", "schedule", sc.Name, "err", err)
			continue
		}
		if err := fn(sc, st); err != nil {
			return err
		}
	}
	return nil
}

// tellMisses emits RPOMissed for the devices of sc that newly missed its
// RPO, after recording them, and forgets those that met it again.
func (s *Service) tellMisses(sc catalog.Schedule, st []apiclient.RPOStatus, now time.Time) error {
	told := map[string]bool{}
	for _, d := range sc.RPOMissed {
		told[d] = true
	}
	present := map[string]bool{}
	var tell []apiclient.RPOStatus
	changed := false
	for _, r := range st {
		present[r.Device] = true
		switch {
		case r.State == apiclient.RPOMissed && !told[r.Device]:
			told[r.Device], changed = true, true
			tell = append(tell, r)
		case r.State == apiclient.RPOMet && told[r.Device]:
			delete(told, r.Device)
			changed = true
		}
	}
	for d := range told {
		if !present[d] { // left the group
			delete(told, d)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	list := make([]string, 0, len(told))
	for d := range told {
		list = append(list, d)
	}
	if err := s.cat.SetRPOMissed(sc.Name, list); err != nil {
		return fmt.Errorf("check RPOs: record the misses of schedule %s: %w", sc.Name, err)
	}
	for _, r := range tell {
		e := notify.Event{Kind: notify.RPOMissed, Time: now, Device: r.Device, RPO: time.Duration(r.RPOSeconds) * time.Second,
			Schedule: sc.Name, Group: sc.BackupGroup}
		if r.LastSuccess != nil {
			e.LastSuccess = *r.LastSuccess
		}
		s.emit(e)
	}
	return nil
}

// rpoOf is the RPO status of each device of sc's device group at now,
// sorted by device: the age of its newest backup in sc's backup group.
func (s *Service) rpoOf(sc catalog.Schedule, now time.Time) ([]apiclient.RPOStatus, error) {
	_, members, err := s.cat.GroupMembers(sc.DeviceGroup)
	if err != nil {
		return nil, fmt.Errorf("device group %s: %w", sc.DeviceGroup, err)
	}
	newest, err := s.cat.Candidates(sc.BackupGroup)
	if err != nil {
		return nil, fmt.Errorf("backups of %s: %w", sc.BackupGroup, err)
	}
	last := make(map[string]time.Time, len(newest))
	for _, p := range newest {
		last[p.Client] = p.Time
	}
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = m.ID
	}
	checked, err := schedule.CheckRPO(sc.RPO, now, ids, last)
	if err != nil {
		return nil, err
	}
	out := make([]apiclient.RPOStatus, 0, len(checked))
	for _, c := range checked {
		r := apiclient.RPOStatus{Device: c.Device, Schedule: sc.Name, DeviceGroup: sc.DeviceGroup, BackupGroup: sc.BackupGroup,
			RPOSeconds: int64(sc.RPO / time.Second), State: apiclient.RPOUnknown}
		if !c.LastSuccess.IsZero() {
			t := c.LastSuccess
			r.LastSuccess, r.AgeSeconds, r.State = &t, int64(c.Age/time.Second), c.State()
		}
		out = append(out, r)
	}
	return out, nil
}

// rpoCounts counts the devices of each schedule with an RPO per state.
func (s *Service) rpoCounts(scs []catalog.Schedule) (map[string]map[string]int, error) {
	out := map[string]map[string]int{}
	err := s.eachRPO(scs, s.now(), func(sc catalog.Schedule, st []apiclient.RPOStatus) error {
		n := map[string]int{apiclient.RPOMet: 0, apiclient.RPOMissed: 0, apiclient.RPOUnknown: 0}
		for _, r := range st {
			n[r.State]++
		}
		out[sc.Name] = n
		return nil
	})
	return out, err
}

// RPO returns the RPO status of the devices the caller may see in the
// schedules they may see, by schedule then device; group ("" all) limits it
// to the schedules of one device group.
func (ss *Session) RPO(_ context.Context, group string) ([]apiclient.RPOStatus, error) {
	if group != "" {
		if _, _, err := ss.groupMembers(group); err != nil {
			return nil, err
		}
	}
	visible, err := ss.visibleSchedules()
	if err != nil {
		return nil, err
	}
	var mine map[string]bool
	if ss.id.owner() {
		if mine, _, err = ss.ownerScope(); err != nil {
			return nil, err
		}
	}
	out := []apiclient.RPOStatus{}
	now := ss.s.now()
	for _, sc := range visible {
		if sc.RPO <= 0 || (group != "" && sc.DeviceGroup != group) {
			continue
		}
		st, err := ss.s.rpoOf(sc, now)
		if err != nil {
			return nil, fmt.Errorf("RPO of schedule %s: %w", sc.Name, err)
		}
		for _, r := range st {
			if mine == nil || mine[r.Device] {
				out = append(out, r)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Schedule < out[j].Schedule })
	return out, nil
}
