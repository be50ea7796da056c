package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/schedule"
)

// Who may do what with schedules (identity.go holds the roles):
//
//   - admin and operator: add, replace, remove and run schedules, and see
//     all of them and every device's RPO;
//   - owner: sees the schedules that touch a group assigned to them (their
//     device group or their backup group), their retention preview, and the
//     RPO of their own devices; may not change or run a schedule.

// schedulerUser is who scheduled runs are audited as.
const schedulerUser = "scheduler"

// SchedulerIdentity is the identity scheduled runs act as: an operator
// named "scheduler", so the audit log tells them from people.
func SchedulerIdentity() Identity {
	return Identity{User: schedulerUser, Role: RoleOperator, Addr: schedulerUser}
}

// Schedules lists the schedules the caller may see, by name.
func (ss *Session) Schedules(_ context.Context) ([]apiclient.Schedule, error) {
	visible, err := ss.visibleSchedules()
	if err != nil {
		return nil, err
	}
	rules, err := ss.s.keepRules()
	if err != nil {
		return nil, err
	}
	rpo, err := ss.s.rpoCounts(visible)
	if err != nil {
		return nil, err
	}
	out := []apiclient.Schedule{}
	for _, sc := range visible {
		out = append(out, scheduleView(sc, rules, rpo[sc.Name]))
	}
	return out, nil
}

// visibleSchedules returns the schedules the caller may see, by name.
func (ss *Session) visibleSchedules() ([]catalog.Schedule, error) {
	all, err := ss.s.cat.Schedules()
	if err != nil {
		return nil, fmt.Errorf("read the schedules: %w", err)
	}
	sees, err := ss.schedulesSeen()
	if err != nil {
		return nil, err
	}
	var out []catalog.Schedule
	for _, sc := range all {
		if sees(sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}

// Schedule returns one schedule the caller may see.
func (ss *Session) Schedule(_ context.Context, name string) (apiclient.Schedule, error) {
	sc, err := ss.schedule(name)
	if err != nil {
		return apiclient.Schedule{}, err
	}
	rules, err := ss.s.keepRules()
	if err != nil {
		return apiclient.Schedule{}, err
	}
	rpo, err := ss.s.rpoCounts([]catalog.Schedule{sc})
	if err != nil {
		return apiclient.Schedule{}, err
	}
	return scheduleView(sc, rules, rpo[sc.Name]), nil
}

// AddSchedule adds a schedule, or replaces the one of the same name (a
// changed cron expression starts from its first slot after now), and sets
// the backup group's keep rule when ns.Keep is given. The server's
// scheduler picks it up at once.
func (ss *Session) AddSchedule(ctx context.Context, ns apiclient.NewSchedule) (apiclient.Schedule, error) {
	err := ss.audited("schedule.add", []string{ns.Name, ns.DeviceGroup, ns.BackupGroup, ns.Cron}, func() error {
		if err := ss.id.requireManage("add or change a schedule"); err != nil {
			return err
		}
		sc, keep, err := CheckSchedule(ns)
		if err != nil {
			return err
		}
		if g, _, err := ss.groupMembers(sc.DeviceGroup); err != nil {
			return err
		} else if g.Kind == catalog.GroupBackup {
			return &FieldError{Field: "device_group", Problem: fmt.Sprintf("%q is a backup group; a schedule backs up a device group", sc.DeviceGroup)}
		}
		if keep != nil {
			if err := ss.s.cat.SetKeepRules([]catalog.KeepRule{*keep}); err != nil {
				return fmt.Errorf("store the keep rule of backup group %s: %w", sc.BackupGroup, err)
			}
		}
		if err := ss.s.cat.PutSchedule(sc); err != nil {
			return fmt.Errorf("store schedule %s: %w", sc.Name, err)
		}
		ss.s.log.Info("schedule stored", "schedule", sc.Name, "cron", sc.Cron, "user", ss.id.User)
		ss.s.schedulesChanged()
		return nil
	})
	if err != nil {
		return apiclient.Schedule{}, err
	}
	return ss.Schedule(ctx, ns.Name)
}

// CheckSchedule checks a schedule request once, naming the field at fault,
// and returns the resource database's schedule and, when ns.Keep is set,
// the backup group's keep rule. It reads nothing.
func CheckSchedule(ns apiclient.NewSchedule) (catalog.Schedule, *catalog.KeepRule, error) {
	sc := catalog.Schedule{Name: ns.Name, DeviceGroup: ns.DeviceGroup, BackupGroup: ns.BackupGroup, Cron: ns.Cron}
	for _, f := range []struct{ field, what, v string }{{"name", "schedule", ns.Name}, {"device_group", "device group", ns.DeviceGroup}, {"backup_group", "backup group", ns.BackupGroup}} {
		if err := CheckName(f.what, f.v); err != nil {
			return sc, nil, &FieldError{Field: f.field, Problem: err.Error()}
		}
	}
	if _, err := schedule.Parse(ns.Cron); err != nil {
		return sc, nil, &FieldError{Field: "cron", Problem: cronProblem(err)}
	}
	if ns.RPO != "" {
		d, err := time.ParseDuration(ns.RPO)
		if err != nil || d < 0 || d%time.Second != 0 {
			return sc, nil, &FieldError{Field: "rpo", Problem: fmt.Sprintf("must be a whole number of seconds or more, like \"26h\" or \"90m\", not %q", ns.RPO)}
		}
		sc.RPO = d
	}
	if ns.Keep == nil {
		return sc, nil, nil
	}
	k := ns.Keep
	for _, c := range []struct {
		name string
		n    int
	}{{"last", k.Last}, {"hourly", k.Hourly}, {"daily", k.Daily}, {"weekly", k.Weekly}, {"monthly", k.Monthly}, {"yearly", k.Yearly}} {
		if c.n < 0 {
			return sc, nil, &FieldError{Field: "keep." + c.name, Problem: fmt.Sprintf("must not be negative (%d)", c.n)}
		}
	}
	rule := catalog.KeepRule{Group: ns.BackupGroup, Last: k.Last, Hourly: k.Hourly, Daily: k.Daily, Weekly: k.Weekly, Monthly: k.Monthly, Yearly: k.Yearly}
	return sc, &rule, nil
}

// cronProblem words a cron error, naming the faulty cron field.
func cronProblem(err error) string {
	var pe *schedule.ParseError
	if !errors.As(err, &pe) {
		return err.Error()
	}
	if pe.Field == "" {
		return fmt.Sprintf("%q is not a cron expression: %v (five fields: minute hour day-of-month month day-of-week, or @daily, @hourly, @every 6h)", pe.Expr, pe.Err)
	}
	return fmt.Sprintf("%q: its %s field is wrong: %v", pe.Expr, pe.Field, pe.Err)
}

// RemoveSchedule deletes a schedule; the backups it made and its backup
// group's keep rule stay.
func (ss *Session) RemoveSchedule(_ context.Context, name string) error {
	return ss.audited("schedule.remove", []string{name}, func() error {
		if err := ss.id.requireManage("remove a schedule"); err != nil {
			return err
		}
		if _, err := ss.schedule(name); err != nil {
			return err
		}
		if err := ss.s.cat.RemoveSchedule(name); err != nil {
			return fmt.Errorf("remove schedule %s: %w", name, err)
		}
		ss.s.schedulesChanged()
		return nil
	})
}

// RunSchedule runs a schedule once now, as its scheduled runs do (backup,
// wait, retention, record), without moving its cron cadence. It returns
// when the run is over; the backup job goes on if ctx ends first, and its
// retention then waits for the next run.
func (ss *Session) RunSchedule(ctx context.Context, name string) (apiclient.ScheduleRun, error) {
	if err := ss.id.requireManage("run a schedule"); err != nil {
		return apiclient.ScheduleRun{}, ss.audited("schedule.run", []string{name}, func() error { return err })
	}
	sc, err := ss.schedule(name)
	if err == nil && ss.s.eng == nil {
		err = errorf(ErrUnprocessable, "a schedule runs in the server: start one with fleetvault serve")
	}
	if err != nil {
		return apiclient.ScheduleRun{}, ss.audited("schedule.run", []string{name}, func() error { return err })
	}
	return ss.runSchedule(ctx, sc, ss.s.now())
}

// schedule looks up a schedule the caller may see, or returns ErrNotFound
// suggesting the closest name among those they may see.
func (ss *Session) schedule(name string) (catalog.Schedule, error) {
	sc, err := ss.s.cat.Schedule(name)
	if err != nil && !errors.Is(err, catalog.ErrNotFound) {
		return sc, fmt.Errorf("look up schedule %s: %w", name, err)
	}
	sees, serr := ss.schedulesSeen()
	if serr != nil {
		return sc, serr
	}
	if err == nil && sees(sc) {
		return sc, nil
	}
	var names []string
	if visible, err := ss.visibleSchedules(); err == nil {
		for _, s := range visible {
			names = append(names, s.Name)
		}
	}
	return sc, errorf(ErrNotFound, "no schedule %q%s", name, suggestOr(name, names, "; list them with GET /api/v1/schedules"))
}

// schedulesSeen returns which schedules the caller sees: all, for an admin
// or operator; for an owner, those whose device group or backup group is
// assigned to them.
func (ss *Session) schedulesSeen() (func(catalog.Schedule) bool, error) {
	if !ss.id.owner() {
		return func(catalog.Schedule) bool { return true }, nil
	}
	_, groups, err := ss.ownerScope()
	if err != nil {
		return nil, err
	}
	return func(sc catalog.Schedule) bool { return groups[sc.DeviceGroup] || groups[sc.BackupGroup] }, nil
}

// keepRules reads the stored keep rules.
func (s *Service) keepRules() ([]catalog.KeepRule, error) {
	rules, err := s.cat.KeepRules()
	if err != nil {
		return nil, fmt.Errorf("read the keep rules: %w", err)
	}
	return rules, nil
}

// groupRule is backup group's keep rule in the API's form, or nil.
func groupRule(rules []catalog.KeepRule, group string) *apiclient.KeepRule {
	for _, r := range rules {
		if r.Client == "" && r.Group == group {
			return &apiclient.KeepRule{Last: r.Last, Hourly: r.Hourly, Daily: r.Daily, Weekly: r.Weekly, Monthly: r.Monthly, Yearly: r.Yearly}
		}
	}
	return nil
}

func scheduleView(sc catalog.Schedule, rules []catalog.KeepRule, rpo map[string]int) apiclient.Schedule {
	out := apiclient.Schedule{Name: sc.Name, DeviceGroup: sc.DeviceGroup, BackupGroup: sc.BackupGroup, Cron: sc.Cron,
		RPOSeconds: int64(sc.RPO / time.Second), Keep: groupRule(rules, sc.BackupGroup), RPO: rpo}
	if !sc.Next.IsZero() {
		t := sc.Next
		out.NextRun = &t
	}
	if !sc.Last.Slot.IsZero() {
		out.LastRun = &apiclient.ScheduleRun{Slot: sc.Last.Slot, Job: sc.Last.Job, Outcome: sc.Last.Outcome, Pruned: sc.Last.Pruned}
	}
	return out
}

// PrunePreview shows what the schedule's retention would remove from its
// backup group now: the decision a run applies after its backup
// (Service.retention), made without removing anything.
func (ss *Session) PrunePreview(ctx context.Context, name string) (apiclient.PrunePreview, error) {
	sc, err := ss.schedule(name)
	if err != nil {
		return apiclient.PrunePreview{}, err
	}
	rep, rules, err := ss.s.retention(ctx, sc.BackupGroup, true)
	if err != nil {
		return apiclient.PrunePreview{}, err
	}
	if ss.id.owner() { // a backup group may hold others' backups: list only the caller's
		devices, groups, err := ss.ownerScope()
		if err != nil {
			return apiclient.PrunePreview{}, err
		}
		mine := rep.Removed[:0:0]
		for _, p := range rep.Removed {
			if ss.id.seesPiece(p.Piece, devices, groups) {
				mine = append(mine, p)
			}
		}
		rep.Removed = mine
	}
	out := apiclient.PrunePreview{Schedule: sc.Name, BackupGroup: sc.BackupGroup, Keep: groupRule(rules, sc.BackupGroup), Remove: prunedView(rep), Kept: rep.Kept}
	return out, nil
}

// retention applies (or, with dryRun, previews) the keep rules to backup
// group: one code path for a scheduled run and its preview.
func (s *Service) retention(ctx context.Context, group string, dryRun bool) (catalog.PruneReport, []catalog.KeepRule, error) {
	rules, err := s.keepRules()
	if err != nil {
		return catalog.PruneReport{}, nil, err
	}
	rep, err := s.cat.PruneGroup(ctx, group, rules, dryRun)
	if err != nil {
		return rep, rules, fmt.Errorf("apply the retention of backup group %s: %w", group, err)
	}
	return rep, rules, nil
}

func prunedView(rep catalog.PruneReport) []apiclient.PrunedBackup {
	out := make([]apiclient.PrunedBackup, 0, len(rep.Removed))
	for _, p := range rep.Removed {
		out = append(out, apiclient.PrunedBackup{ID: p.ID, Device: p.Client, Time: p.Time, Reason: p.Reason})
	}
	return out
}
