package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetvault/fleetvault/apiclient"
)

// statsStore is what the stats commands need: *apiclient.Client asks a
// server, *localStore works on the installation.
type statsStore interface {
	Stats(ctx context.Context, q apiclient.StatsQuery) (apiclient.Stats, error)
	SetStatsRetention(ctx context.Context, days int) error
}

var (
	_ statsStore = (*apiclient.Client)(nil)
	_ statsStore = (*localStore)(nil)
)

type statsOptions struct {
	owner, group, since, until string
	asJSON, asCSV              bool
}

func (o *statsOptions) AddFlags(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&o.owner, "owner", "", "only the devices of this data owner (an owner sees only their own anyway)")
	f.StringVar(&o.group, "group", "", "only the members of this device group")
	f.StringVar(&o.since, "since", "", "first day (a date, RFC 3339, or a duration ago such as 720h)")
	f.StringVar(&o.until, "until", "", "last day (a date, RFC 3339, or a duration ago)")
	f.BoolVar(&o.asJSON, "json", false, "print JSON")
	f.BoolVar(&o.asCSV, "csv", false, "print CSV: a header, one line per day, then the total")
}

func (o *statsOptions) query() (apiclient.StatsQuery, error) {
	q := apiclient.StatsQuery{Owner: o.owner, Group: o.group}
	if o.asJSON && o.asCSV {
		return q, usageError{fmt.Errorf("stats: give --json or --csv, not both")}
	}
	for _, p := range []struct {
		flag, v string
		t       *time.Time
	}{{"--since", o.since, &q.Since}, {"--until", o.until, &q.Until}} {
		if p.v == "" {
			continue
		}
		t, err := parseWhen(p.v)
		if err != nil {
			return q, usageError{fmt.Errorf("%s: %w", p.flag, err)}
		}
		*p.t = t
	}
	return q, nil
}

func newStatsCommand(a *app) *cobra.Command {
	var o statsOptions
	c := &cobra.Command{
		Use:   "stats [--owner U] [--group G] [--since T] [--until T] [--json|--csv]",
		Short: "Job outcome statistics per day: success rate, bytes backed up, restore durations, RPO misses",
		Long: `stats sums the history of job outcomes per day (UTC) and in total: backup and
restore attempts, successes and failures, the success rate, bytes backed up,
restore durations (total and longest, from a job's start to the device's
outcome) and RPO misses. The history is kept apart from the backups, with its
own retention (default 400 days; fleetvault stats retention set DAYS), so a
year of reports outlives backups kept six months. An owner sees only their
own devices' statistics.

It asks the server given by --server; when no server answers there, it reads
the installation given by --mbr directly.` + exitCodesHelp,
		Example: `  fleetvault stats --since 2026-01-01
  fleetvault stats --owner facilities --since 720h --csv > facilities.csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := o.query()
			if err != nil {
				return err
			}
			r := newRemote(cmd, a)
			var st apiclient.Stats
			err = serverOrLocal(a, r, true, func() (err error) {
				st, err = r.client.Stats(cmd.Context(), q)
				return err
			}, func(ls *localStore) (err error) {
				st, err = ls.Stats(cmd.Context(), q)
				return err
			})
			if err != nil {
				return fmt.Errorf("stats: %w", err)
			}
			switch {
			case o.asJSON:
				return writeJSON(a.stdout, st)
			case o.asCSV:
				return st.WriteCSV(a.stdout)
			}
			return printStats(a, st)
		},
	}
	o.AddFlags(c)
	c.AddCommand(newStatsRetentionCommand(a))
	addServerFlags(c, true)
	return c
}

func printStats(a *app, st apiclient.Stats) error {
	if len(st.Days) == 0 {
		fmt.Fprintln(a.stdout, "no history in this period")
		return nil
	}
	tw := newTable(a.stdout)
	fmt.Fprintln(tw, "DAY\tBACKUPS\tFAILED\tBYTES\tRESTORES\tFAILED\tRESTORE S (TOTAL/MAX)\tRPO MISSES\tSUCCESS")
	for _, r := range append(append([]apiclient.StatsRow(nil), st.Days...), st.Total) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%.1f/%.1f\t%d\t%.1f%%\n", r.Day, r.BackupAttempts, r.BackupFailures, r.BytesBackedUp,
			r.RestoreAttempts, r.RestoreFailures, r.RestoreSecondsTotal, r.RestoreSecondsMax, r.RPOMisses, 100*r.SuccessRate)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "%d devices; history kept %d days\n", st.Devices, st.RetentionDays)
	return nil
}

func newStatsRetentionCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "retention",
		Short: "Set how long the history of job outcomes is kept",
		Args:  cobra.NoArgs,
	}
	c.AddCommand(&cobra.Command{
		Use:   "set DAYS",
		Short: "Keep DAYS days of history (admin); serve prunes older days daily",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			days, err := strconv.Atoi(args[0])
			if err != nil || days < 1 {
				return usageError{fmt.Errorf("stats retention set: DAYS is a whole number of days, at least 1, not %q", args[0])}
			}
			r := newRemote(cmd, a)
			err = serverOrLocal(a, r, false, func() error { return r.client.SetStatsRetention(cmd.Context(), days) },
				func(ls *localStore) error { return ls.SetStatsRetention(cmd.Context(), days) })
			if err != nil {
				return fmt.Errorf("stats retention set: %w", err)
			}
			fmt.Fprintf(a.stdout, "history kept %d days\n", days)
			return nil
		},
	})
	return c
}
