package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fleetvault/fleetvault/apiclient"
)

// scheduleStore manages schedules and reads RPOs.
type scheduleStore interface {
	Schedules(ctx context.Context) ([]apiclient.Schedule, error)
	Schedule(ctx context.Context, name string) (apiclient.Schedule, error)
	AddSchedule(ctx context.Context, ns apiclient.NewSchedule) (apiclient.Schedule, error)
	RemoveSchedule(ctx context.Context, name string) error
	RunSchedule(ctx context.Context, name string) (apiclient.ScheduleRun, error)
	PrunePreview(ctx context.Context, name string) (apiclient.PrunePreview, error)
	RPO(ctx context.Context, group string) ([]apiclient.RPOStatus, error)
}

const scheduleHelp = `

A schedule backs up a device group into a backup group when its cron
expression fires, then applies the backup group's keep rule (retention, with
restic's forget semantics) and records the run. A server (fleetvault serve)
runs the schedules: one loop, each schedule's next run kept in the resource
database, so a restart neither skips nor repeats a run, and runs missed while
the server was down run once. Admins and operators manage schedules; a data
owner sees those that touch their groups.`

func newScheduleCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "schedule",
		Short: "Schedule backups, with retention and a recovery point objective (RPO)",
		Long:  `schedule adds, lists, shows, runs and removes backup schedules.` + scheduleHelp + directStoreHelp + exitCodesHelp,
		Args:  cobra.NoArgs,
	}
	addServerFlags(c, true)
	c.AddCommand(newScheduleAddCommand(a), newScheduleListCommand(a), newScheduleShowCommand(a), newScheduleRemoveCommand(a), newScheduleRunNowCommand(a))
	return c
}

// keepFlags are the --keep-* flags of a keep rule.
var keepFlags = []struct {
	name, help string
	field      func(*apiclient.KeepRule) *int
}{
	{"keep-last", "keep the N newest backups of each device", func(k *apiclient.KeepRule) *int { return &k.Last }},
	{"keep-hourly", "keep the newest backup of each of the N newest hours", func(k *apiclient.KeepRule) *int { return &k.Hourly }},
	{"keep-daily", "keep the newest backup of each of the N newest days", func(k *apiclient.KeepRule) *int { return &k.Daily }},
	{"keep-weekly", "keep the newest backup of each of the N newest ISO weeks", func(k *apiclient.KeepRule) *int { return &k.Weekly }},
	{"keep-monthly", "keep the newest backup of each of the N newest months", func(k *apiclient.KeepRule) *int { return &k.Monthly }},
	{"keep-yearly", "keep the newest backup of each of the N newest years", func(k *apiclient.KeepRule) *int { return &k.Yearly }},
}

// keepRule reads the --keep-* flags: nil when none was given.
func keepRule(f *pflag.FlagSet) (*apiclient.KeepRule, error) {
	var k apiclient.KeepRule
	given := false
	for _, kf := range keepFlags {
		fl := f.Lookup(kf.name)
		if fl == nil || !fl.Changed {
			continue
		}
		n, err := f.GetInt(kf.name)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, usageError{fmt.Errorf("--%s %d: give 0 or more", kf.name, n)}
		}
		*kf.field(&k) = n
		given = true
	}
	if !given {
		return nil, nil
	}
	return &k, nil
}

func newScheduleAddCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "add NAME --group G --into B --cron EXPR [--rpo DURATION] [--keep-last N --keep-hourly N --keep-daily N --keep-weekly N --keep-monthly N --keep-yearly N]",
		Short: "Add a backup schedule (or replace the one of that name)",
		Long: `add stores a schedule: when --cron fires, the devices of device group --group
are backed up into backup group --into, then --into's keep rule applies.

--cron is five fields (minute hour day-of-month month day-of-week, as in
crontab(5), names like MON and JAN allowed) or a descriptor (@daily,
@hourly, @weekly, @monthly, @yearly, @every 6h), in UTC unless it starts with
CRON_TZ=Zone. --rpo is each device's recovery point objective: its last
successful backup must be at most that old (fleetvault rpo shows who meets
it; a device that misses it is reported once). The --keep-* flags set the
backup group's keep rule (restic's forget semantics: a backup is kept if any
count keeps it; no rule keeps everything).` + scheduleHelp + directStoreHelp + exitCodesHelp,
		Example: `  fleetvault schedule add quarter-hourly --group "Backup Group of Devices" --into "North Device Backup" --cron "*/15 * * * *" --rpo 1h --keep-last 4 --keep-daily 7
  fleetvault schedule add nightly --group homes --into home-backups --cron "0 3 * * *" --rpo 26h --keep-daily 14 --keep-monthly 6`,
		Args: exactArgs(1, `schedule add needs one schedule name, e.g. fleetvault schedule add nightly --group homes --into home-backups --cron "0 3 * * *"`),
		RunE: func(cmd *cobra.Command, args []string) error {
			keep, err := keepRule(cmd.Flags())
			if err != nil {
				return err
			}
			ns := apiclient.NewSchedule{Name: args[0], DeviceGroup: a.v.GetString("group"), BackupGroup: a.v.GetString("into"),
				Cron: a.v.GetString("cron"), RPO: a.v.GetString("rpo"), Keep: keep}
			return runScheduleAdd(cmd.Context(), a, newRemote(cmd, a), ns, a.v.GetBool("json"))
		},
	}
	f := c.Flags()
	f.String("group", "", "the device group to back up (required)")
	f.String("into", "", "the backup group the backups go to (required)")
	f.String("cron", "", `when to run: "*/15 * * * *", "0 3 * * *", "@daily" (required)`)
	f.String("rpo", "", `recovery point objective per device, e.g. 1h or 26h (none by default)`)
	for _, kf := range keepFlags {
		f.Int(kf.name, 0, kf.help)
	}
	f.Bool("json", false, "print the schedule as JSON")
	for _, req := range []string{"group", "into", "cron"} {
		_ = c.MarkFlagRequired(req)
	}
	return c
}

func runScheduleAdd(ctx context.Context, a *app, r remote, ns apiclient.NewSchedule, asJSON bool) error {
	var sc apiclient.Schedule
	err := withStore(a, r, false, func(s store) error {
		var err error
		sc, err = s.AddSchedule(ctx, ns)
		return err
	})
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(a.stdout, sc)
	}
	fmt.Fprintf(a.stdout, "schedule %q: back up %q into %q at %q\n", sc.Name, sc.DeviceGroup, sc.BackupGroup, sc.Cron)
	return renderSchedule(a.stdout, sc)
}

func newScheduleListCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "list [--json]",
		Short: "List schedules with their next run, last run and RPO states",
		Long:  `list prints every schedule you may see: next run, the last run (its job and outcome, backups pruned) and how many devices meet, miss or have no backup for the RPO.` + scheduleHelp + directStoreHelp + exitCodesHelp,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runScheduleList(cmd.Context(), a, newRemote(cmd, a), a.v.GetBool("json"))
		},
	}
	c.Flags().Bool("json", false, "print the schedules as a JSON array")
	return c
}

func runScheduleList(ctx context.Context, a *app, r remote, asJSON bool) error {
	var scs []apiclient.Schedule
	err := withStore(a, r, true, func(s store) error {
		var err error
		scs, err = s.Schedules(ctx)
		return err
	})
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(a.stdout, scs)
	}
	tw := newTable(a.stdout)
	fmt.Fprintln(tw, "NAME\tDEVICES\tINTO\tCRON\tNEXT RUN\tLAST RUN\tJOB\tOUTCOME\tPRUNED\tRPO\tMET\tMISSED\tUNKNOWN")
	for _, sc := range scs {
		next, last, job, outcome, pruned := "-", "never", "-", "-", "-"
		if sc.NextRun != nil {
			next = sc.NextRun.UTC().Format(time.RFC3339)
		}
		if lr := sc.LastRun; lr != nil {
			last, job, outcome, pruned = lr.Slot.UTC().Format(time.RFC3339), orDash(lr.Job), lr.Outcome, fmt.Sprint(lr.Pruned)
		}
		rpo, met, missed, unknown := "-", "-", "-", "-"
		if sc.RPOSeconds > 0 {
			rpo = (time.Duration(sc.RPOSeconds) * time.Second).String()
			met, missed, unknown = fmt.Sprint(sc.RPO["met"]), fmt.Sprint(sc.RPO["missed"]), fmt.Sprint(sc.RPO["unknown"])
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", sc.Name, sc.DeviceGroup, sc.BackupGroup, sc.Cron, next, last, job, outcome, pruned, rpo, met, missed, unknown)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "%d schedule(s)\n", len(scs))
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newScheduleShowCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "show NAME [--prune-preview] [--json]",
		Short: "Show a schedule; with --prune-preview, what its retention would remove now",
		Long: `show prints one schedule. --prune-preview lists the backups of its backup
group that its keep rule would remove now: the decision a run applies after
its backup, made without removing anything (fleetvault catalog prune
--dry-run --group B shows the same).` + scheduleHelp + directStoreHelp + exitCodesHelp,
		Args: exactArgs(1, "schedule show needs one schedule name; list them with fleetvault schedule list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScheduleShow(cmd.Context(), a, newRemote(cmd, a), args[0], a.v.GetBool("prune-preview"), a.v.GetBool("json"))
		},
	}
	c.Flags().Bool("prune-preview", false, "list what the backup group's retention would remove now")
	c.Flags().Bool("json", false, "print as JSON")
	return c
}

func runScheduleShow(ctx context.Context, a *app, r remote, name string, preview, asJSON bool) error {
	var sc apiclient.Schedule
	var pp apiclient.PrunePreview
	err := withStore(a, r, true, func(s store) error {
		var err error
		if preview {
			pp, err = s.PrunePreview(ctx, name)
			return err
		}
		sc, err = s.Schedule(ctx, name)
		return err
	})
	switch {
	case err != nil:
		return err
	case preview && asJSON:
		return writeJSON(a.stdout, pp)
	case preview:
		return renderPrunePreview(a.stdout, pp)
	case asJSON:
		return writeJSON(a.stdout, sc)
	}
	return renderSchedule(a.stdout, sc)
}

func renderSchedule(w io.Writer, sc apiclient.Schedule) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "name\t%s\n", sc.Name)
	fmt.Fprintf(tw, "device group\t%s\n", sc.DeviceGroup)
	fmt.Fprintf(tw, "backup group\t%s\n", sc.BackupGroup)
	fmt.Fprintf(tw, "cron\t%s\n", sc.Cron)
	if sc.RPOSeconds > 0 {
		fmt.Fprintf(tw, "rpo\t%s (met %d, missed %d, unknown %d)\n", time.Duration(sc.RPOSeconds)*time.Second, sc.RPO["met"], sc.RPO["missed"], sc.RPO["unknown"])
	} else {
		fmt.Fprintln(tw, "rpo\tnone")
	}
	fmt.Fprintf(tw, "keep\t%s\n", keepText(sc.Keep))
	if sc.NextRun != nil {
		fmt.Fprintf(tw, "next run\t%s\n", sc.NextRun.UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintln(tw, "next run\tset when a server first sees the schedule")
	}
	if lr := sc.LastRun; lr != nil {
		fmt.Fprintf(tw, "last run\t%s: job %s %s, %d backup(s) pruned\n", lr.Slot.UTC().Format(time.RFC3339), orDash(lr.Job), lr.Outcome, lr.Pruned)
	} else {
		fmt.Fprintln(tw, "last run\tnever")
	}
	return tw.Flush()
}

// keepText words a keep rule.
func keepText(k *apiclient.KeepRule) string {
	if k == nil || *k == (apiclient.KeepRule{}) {
		return "everything (no keep rule)"
	}
	var parts []string
	for _, kf := range keepFlags {
		if n := *kf.field(k); n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", strings.TrimPrefix(kf.name, "keep-"), n))
		}
	}
	return strings.Join(parts, ", ")
}

func renderPrunePreview(w io.Writer, pp apiclient.PrunePreview) error {
	fmt.Fprintf(w, "backup group %q, keep %s\n", pp.BackupGroup, keepText(pp.Keep))
	for _, p := range pp.Remove {
		fmt.Fprintf(w, "would remove %s %s %s: %s\n", p.ID, p.Device, p.Time.UTC().Format(time.RFC3339), p.Reason)
	}
	fmt.Fprintf(w, "would remove %d backup(s), keep %d\n", len(pp.Remove), pp.Kept)
	return nil
}

func newScheduleRemoveCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a schedule (its backups and the backup group's keep rule stay)",
		Long:  `remove deletes a schedule; a running server stops running it at once.` + scheduleHelp + directStoreHelp + exitCodesHelp,
		Args:  exactArgs(1, "schedule remove needs one schedule name; list them with fleetvault schedule list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := withStore(a, newRemote(cmd, a), false, func(s store) error { return s.RemoveSchedule(cmd.Context(), args[0]) })
			if err == nil {
				fmt.Fprintf(a.stdout, "removed schedule %q\n", args[0])
			}
			return err
		},
	}
}

func newScheduleRunNowCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "run-now NAME [--json]",
		Short: "Run a schedule once now, without moving its cadence",
		Long: `run-now backs up the schedule's device group now, waits for the job, applies
the backup group's keep rule and records the run, as a scheduled run does.
The schedule's next run stays where it was. It needs a server.` + scheduleHelp + exitCodesHelp,
		Args: exactArgs(1, "schedule run-now needs one schedule name; list them with fleetvault schedule list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScheduleRunNow(cmd.Context(), a, newRemote(cmd, a), args[0], a.v.GetBool("json"))
		},
	}
	c.Flags().Bool("json", false, "print the run as JSON")
	return c
}

func runScheduleRunNow(ctx context.Context, a *app, r remote, name string, asJSON bool) error {
	run, err := r.client.RunSchedule(ctx, name)
	if noServer(err) {
		return r.needServer("schedule run-now", err)
	}
	if err != nil {
		return r.explain(err)
	}
	if asJSON {
		if err := writeJSON(a.stdout, run); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(a.stdout, "schedule %q ran: job %s %s, %d backup(s) pruned\n", name, orDash(run.Job), run.Outcome, run.Pruned)
	}
	if run.Outcome != "done" {
		return exitCodeError{exitIncomplete, fmt.Errorf("schedule %s: the backup job ended %s%s; see fleetvault jobs show %s", name, run.Outcome, detailText(run.Detail), run.Job)}
	}
	return nil
}

func detailText(d string) string {
	if d == "" {
		return ""
	}
	return " (" + d + ")"
}

func newRPOCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "rpo [--group G] [--json]",
		Short: "Show each scheduled device's recovery point objective: met, missed or unknown",
		Long: `rpo compares the age of each device's last successful backup (its newest
backup in the schedule's backup group) with the schedule's RPO: met, missed,
or unknown when it was never backed up there. Only schedules with --rpo count;
a device in two such schedules shows twice. A server checks every minute,
exports fleetvault_rpo_devices{schedule,state} and
fleetvault_backup_age_seconds{schedule}, and reports a device that missed its
RPO once, until it meets it again.` + directStoreHelp + exitCodesHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRPO(cmd.Context(), a, newRemote(cmd, a), a.v.GetString("group"), a.v.GetBool("json"))
		},
	}
	addServerFlags(c, false)
	c.Flags().String("group", "", "only the schedules of this device group")
	c.Flags().Bool("json", false, "print the states as a JSON array")
	return c
}

func runRPO(ctx context.Context, a *app, r remote, group string, asJSON bool) error {
	var st []apiclient.RPOStatus
	err := withStore(a, r, true, func(s store) error {
		var err error
		st, err = s.RPO(ctx, group)
		return err
	})
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(a.stdout, st)
	}
	tw := newTable(a.stdout)
	fmt.Fprintln(tw, "SCHEDULE\tDEVICE\tSTATE\tLAST SUCCESS\tAGE\tRPO")
	n := map[string]int{}
	for _, s := range st {
		last, age := "never", "-"
		if s.LastSuccess != nil {
			last, age = s.LastSuccess.UTC().Format(time.RFC3339), (time.Duration(s.AgeSeconds) * time.Second).String()
		}
		n[s.State]++
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Schedule, s.Device, s.State, last, age, time.Duration(s.RPOSeconds)*time.Second)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	states := make([]string, 0, len(n))
	for k := range n {
		states = append(states, k)
	}
	sort.Strings(states)
	var parts []string
	for _, k := range states {
		parts = append(parts, fmt.Sprintf("%d %s", n[k], k))
	}
	fmt.Fprintf(a.stdout, "%d device(s)%s\n", len(st), listSuffix(parts))
	return nil
}

func listSuffix(parts []string) string {
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, ", ")
}
