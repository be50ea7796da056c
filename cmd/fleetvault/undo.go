package main

import (
	"github.com/fleetvault/fleetvault/apiclient"

	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"github.com/fleetvault/fleetvault/grouprestore"
)

func newUndoCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "undo JOB [rollout flags] [--detach]",
		Short: "Undo a restore: write back the settings every device held before it",
		Long: `undo runs a job that writes back to every device a restore wrote the
settings it held just before (the restore saved them as a snapshot), and
verifies them by hash. Devices the restore did not write are left alone.` + jobHelp + exitCodesHelp,
		Example: `  fleetvault undo r-20260301-0001
  fleetvault undo r-20260301-0001 --rate 20 --json`,
		Args: exactArgs(1, "undo needs the id of the restore job to undo; list jobs with fleetvault jobs list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			nj := apiclient.NewJob{Kind: string(grouprestore.KindUndo), Source: args[0]}
			var err error
			if nj.Rollout, err = rolloutFromFlags(a); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			return runJob(ctx, a, newRemote(cmd, a), nj, jobOutput{asJSON: a.v.GetBool("json"), detach: a.v.GetBool("detach")})
		},
	}
	addRolloutFlags(c.Flags(), false)
	addJobOutputFlags(c.Flags())
	addServerFlags(c, false)
	return c
}
