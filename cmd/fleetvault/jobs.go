package main

import (
	"github.com/fleetvault/fleetvault/apiclient"

	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"
)

func newJobsCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "jobs",
		Short: "List, show, watch, cancel, pause and resume jobs",
		Long: `jobs looks after the backup, restore and undo jobs of a server. A job
survives a server restart: the journal says where every device stands, and
the restarted server resumes it. When the disk fills up or fails, a job
pauses by itself with an error (shown by jobs show and watch), retries, and
goes on once writes succeed again.` + exitCodesHelp,
		Args: cobra.NoArgs,
	}
	addServerFlags(c, true)
	c.AddCommand(newJobsListCommand(a), newJobsShowCommand(a), newJobsWatchCommand(a),
		withAliases(newJobsControlCommand(a, "cancel", "Cancel a job: devices not started are skipped (alias: stop)",
			"cancel (or stop) stops a job: devices in flight finish, devices not started end skipped;\na continuous restore stops standing. It waits for the job to end and prints its report\n(exit 0 once cancelled)."), "stop"),
		newJobsControlCommand(a, "pause", "Pause a job: no more devices are started until resume",
			"pause stops a job from starting devices; those in flight finish."),
		newJobsControlCommand(a, "resume", "Resume a paused job",
			"resume lets a paused job start devices again."))
	return c
}

// jobIDArg checks that a jobs subcommand got one job id.
func jobIDArg(what string) cobra.PositionalArgs {
	return exactArgs(1, fmt.Sprintf("jobs %s needs one job id; list them with fleetvault jobs list", what))
}

// jobsErr explains a failed job request: no server, or the server's answer
// (whose 404 suggests the closest job id).
func jobsErr(r remote, err error) error {
	if noServer(err) {
		return r.needServer("every job", err)
	}
	return r.explain(err)
}

func newJobsListCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "list",
		Short: "List jobs, newest first",
		Long:  `list prints every job the server's journal holds, newest first.` + exitCodesHelp,
		Example: `  fleetvault jobs list
  fleetvault jobs list --json | jq -r '.[] | select(.state == "running") | .id'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r := newRemote(cmd, a)
			js, err := r.client.Jobs(cmd.Context())
			if err != nil {
				return jobsErr(r, err)
			}
			if a.v.GetBool("json") {
				if js == nil {
					js = []apiclient.Job{}
				}
				return writeJSON(a.stdout, js)
			}
			return renderJobs(a.stdout, js)
		},
	}
	c.Flags().Bool("json", false, "print the jobs as a JSON array")
	return c
}

func renderJobs(w io.Writer, js []apiclient.Job) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tKIND\tSTATE\tDEVICES\tSOURCE\tTARGET\tCREATED\tCOUNTS")
	for _, j := range js {
		created := ""
		if j.Created != nil {
			created = j.Created.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", j.ID, j.Kind, j.State, j.Total, j.Source, j.Target, created, jobCounts(j))
	}
	return tw.Flush()
}

func newJobsShowCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "show JOB",
		Short: "Show a job: its state, counts and the devices that did not end restored",
		Long: `show prints a job as it stands. For a job that has ended, the exit status
is the job's: 0 when every targeted device ended restored (or backed up), 3
when some did not, 1 when the job failed; a job still running exits 0.` + exitCodesHelp,
		Example: `  fleetvault jobs show r-20260301-0001
  fleetvault jobs show r-20260301-0001 --json | jq '.devices[] | select(.state != "restored")'`,
		Args: jobIDArg("show"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r := newRemote(cmd, a)
			j, err := r.client.Job(cmd.Context(), args[0], true)
			if err != nil {
				return jobsErr(r, err)
			}
			return showFinal(a, j, a.v.GetBool("json"))
		},
	}
	c.Flags().Bool("json", false, "print the job as JSON: state, counts and every device")
	return c
}

func newJobsWatchCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "watch JOB",
		Short: "Follow a job to its end with a progress bar, then print its report",
		Long: `watch follows a running job: a live progress bar on a terminal (counts per
state, rate, time left), then the report when the job ends. Interrupting
watch does not stop the job.` + exitCodesHelp,
		Example: `  fleetvault jobs watch r-20260301-0001
  fleetvault jobs watch r-20260301-0001 --json > report.json`,
		Args: jobIDArg("watch"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			return runJobsWatch(ctx, a, newRemote(cmd, a), args[0], a.v.GetBool("json"))
		},
	}
	c.Flags().Bool("json", false, "print the final job as JSON: state, counts and every device")
	return c
}

func runJobsWatch(ctx context.Context, a *app, r remote, id string, asJSON bool) error {
	// Ask for the job first: a mistyped id gets the server's suggestion.
	if _, err := r.client.Job(ctx, id, false); err != nil {
		return jobsErr(r, err)
	}
	j, err := followJob(ctx, a, r, id, !asJSON)
	if err != nil {
		return err
	}
	return showFinal(a, j, asJSON)
}

func newJobsControlCommand(a *app, what, short, long string) *cobra.Command {
	c := &cobra.Command{
		Use:     what + " JOB",
		Short:   short,
		Long:    long + exitCodesHelp,
		Example: fmt.Sprintf("  fleetvault jobs %s r-20260301-0001", what),
		Args:    jobIDArg(what),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			return runJobsControl(ctx, a, newRemote(cmd, a), what, args[0], a.v.GetBool("json"))
		},
	}
	c.Flags().Bool("json", false, "print the job as JSON")
	return c
}

func runJobsControl(ctx context.Context, a *app, r remote, what, id string, asJSON bool) error {
	var j apiclient.Job
	var err error
	switch what {
	case "cancel":
		j, err = r.client.CancelJob(ctx, id)
	case "pause":
		j, err = r.client.PauseJob(ctx, id)
	default:
		j, err = r.client.ResumeJob(ctx, id)
	}
	if err != nil {
		return jobsErr(r, err)
	}
	if what == "cancel" {
		// Wait for the devices in flight, then report the job as it ended.
		if j, err = followJob(ctx, a, r, id, false); err != nil {
			return err
		}
		if asJSON {
			return writeJSON(a.stdout, j)
		}
		writeJobReport(a.stdout, j)
		return nil
	}
	if asJSON {
		return writeJSON(a.stdout, j)
	}
	_, err = fmt.Fprintf(a.stdout, "%s: %s\n", jobTitle(j), j.State)
	return err
}
