package main

import (
	"context"
	"fmt"
	"github.com/fleetvault/fleetvault/apiclient"
	"io"
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"github.com/fleetvault/fleetvault/grouprestore"
)

func newDriftCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "drift --group DEVICE-GROUP [--against BACKUP-GROUP] [--remediate] [--json]",
		Short: "Check whether every device of a group still holds what it should",
		Long: `drift runs a drift job: every device of --group is probed and its settings
compared with what it should hold: what its last restore wrote (under that
restore's profile), or, with --against, its match in that backup group (under
--profile, or the backup group's profile). Each device ends

  in-sync   it holds what it should (parts a profile keeps may differ)
  drifted   it holds something else; the report lists the keys that differ
  unknown   it did not answer, or there is nothing to compare it with

--remediate then restores the drifted devices, and only them, with every
safeguard of a restore (snapshot, journal, verified write, undo): from the
backup group compared with, or by replaying each device's last restore (its
backup group as of that restore, its profile and policy).

The server keeps the gauge fleetvault_devices_drifted{group} at each group's
last drift count.

Exit status: 0 when no device drifted (with --remediate: when every drifted
device was restored again), 3 otherwise, 1 on an error.` + jobHelp,
		Example: `  fleetvault drift --group new-homes
  fleetvault drift --group new-homes --against models --json
  fleetvault drift --group new-homes --remediate`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nj := apiclient.NewJob{Kind: string(grouprestore.KindDrift), Target: a.v.GetString("group"), Source: a.v.GetString("against"),
				Profile: a.v.GetString("profile"), AsOf: a.v.GetString("as-of")}
			if nj.Target == "" {
				return usageError{fmt.Errorf("drift needs --group DEVICE-GROUP, e.g. fleetvault drift --group new-homes")}
			}
			if nj.Source == "" && (nj.Profile != "" || nj.AsOf != "") {
				return usageError{fmt.Errorf("drift: --profile and --as-of go with --against BACKUP-GROUP")}
			}
			var err error
			if nj.Rollout, err = rolloutFromFlags(a); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			return runDrift(ctx, a, newRemote(cmd, a), nj, a.v.GetBool("remediate"), a.v.GetBool("json"))
		},
	}
	f := c.Flags()
	f.String("group", "", "the device group to check (required)")
	f.String("against", "", "compare with the matching backups of this backup group (default: each device's last restore)")
	f.String("profile", "", "with --against: the restore profile to compare under (default: the backup group's)")
	f.String("as-of", "", "with --against: compare with the backups current at this time")
	f.Bool("remediate", false, "restore the drifted devices (only them) afterwards")
	f.Bool("json", false, "print the drift job (and the remediation jobs) as JSON")
	addRolloutFlags(f, false)
	addServerFlags(c, false)
	return c
}

// driftResult is what drift --json prints.
type driftResult struct {
	Drift       apiclient.Job   `json:"drift"`
	Remediation []apiclient.Job `json:"remediation,omitempty"`
}

func runDrift(ctx context.Context, a *app, r remote, nj apiclient.NewJob, remediate, asJSON bool) error {
	j, err := r.client.StartJob(ctx, nj)
	if err != nil {
		if noServer(err) {
			return r.needServer("a drift job", err)
		}
		return r.explain(err)
	}
	final, err := followJob(ctx, a, r, j.ID, !asJSON)
	if err != nil {
		return err
	}
	res := driftResult{Drift: final}
	if !asJSON {
		writeDriftReport(a.stdout, final)
	}
	drifted := countOf(final, grouprestore.Drifted)
	if final.State == grouprestore.JobFailed {
		return jobExit(final)
	}
	if remediate && drifted > 0 {
		if res.Remediation, err = remediateDrift(ctx, a, r, final.ID, asJSON); err != nil {
			return err
		}
	}
	if asJSON {
		if err := writeJSON(a.stdout, res); err != nil {
			return err
		}
	}
	return driftExit(res, remediate)
}

// remediateDrift starts the remediation restores and follows each to its end.
func remediateDrift(ctx context.Context, a *app, r remote, driftJob string, asJSON bool) ([]apiclient.Job, error) {
	started, err := r.client.RemediateJob(ctx, driftJob)
	if err != nil {
		return nil, r.explain(err)
	}
	var out []apiclient.Job
	for _, rj := range started {
		if !asJSON {
			fmt.Fprintf(a.stdout, "\nremediation: started %s (%d devices)\n", jobTitle(rj), rj.Total)
		}
		final, err := followJob(ctx, a, r, rj.ID, !asJSON)
		if err != nil {
			return out, err
		}
		if !asJSON {
			writeJobReport(a.stdout, final)
		}
		out = append(out, final)
	}
	return out, nil
}

// driftExit is 0 when nothing drifted (or, remediating, when every drifted
// device was restored), 3 otherwise.
func driftExit(res driftResult, remediate bool) error {
	drifted := countOf(res.Drift, grouprestore.Drifted)
	if drifted == 0 {
		return nil
	}
	if remediate {
		restored := 0
		for _, j := range res.Remediation {
			restored += countOf(j, grouprestore.Restored)
		}
		if restored == drifted {
			return nil
		}
		return exitCodeError{exitIncomplete, fmt.Errorf("drift: %d devices drifted, %d were restored again (see the report)", drifted, restored)}
	}
	return exitCodeError{exitIncomplete, fmt.Errorf("drift: %d of %d devices drifted (see the report; --remediate restores them)", drifted, res.Drift.Total)}
}

func countOf(j apiclient.Job, s grouprestore.State) int {
	if j.Progress == nil {
		return 0
	}
	return j.Progress.Counts[s]
}

func driftTitle(j apiclient.Job) string {
	against := "each device's last restore"
	if j.Source != "" {
		against = fmt.Sprintf("backup group %q", j.Source)
	}
	return fmt.Sprintf("drift job %s of device group %q against %s%s", j.ID, j.Target, against, restoreNotes(j))
}

// writeDriftReport prints the job's report and each drifted device's diff.
func writeDriftReport(w io.Writer, j apiclient.Job) {
	writeJobReport(w, j)
	for _, d := range j.Devices {
		if d.State == grouprestore.Drifted && d.Diff != nil {
			diff := *d.Diff
			diff.A, diff.B = d.Device+" should hold", d.Device+" holds"
			_ = renderDiff(w, diff)
		}
	}
}

// jobCounts is a job's counts for a listing ("" when it has none).
func jobCounts(j apiclient.Job) string {
	if j.Progress == nil {
		return ""
	}
	return countsLine(j.Progress.Counts)
}

func withAliases(c *cobra.Command, aliases ...string) *cobra.Command {
	c.Aliases = append(c.Aliases, aliases...)
	return c
}
