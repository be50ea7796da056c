package main

import (
	"github.com/fleetvault/fleetvault/apiclient"

	"fmt"
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"github.com/fleetvault/fleetvault/grouprestore"
)

func newBackupCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "backup --group DEVICE-GROUP --into BACKUP-GROUP [rollout flags] [--detach]",
		Short: "Group backup: store the settings and tag of every device of a group",
		Long: `backup runs a group backup: every device of the device group --group is
asked for its tag and settings, which are stored in the catalog as backups in
the backup group --into. Back up the reference devices
of a model house this way, then restore them to new homes with fleetvault
restore --from BACKUP-GROUP.` + jobHelp + exitCodesHelp,
		Example: `  fleetvault backup --group "Model House" --into "Backup Group for Reference IoT from model House"
  fleetvault backup --group offices-emea --into emea-2026-03 --rate 100 --detach`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nj := apiclient.NewJob{Kind: string(grouprestore.KindBackup), Source: a.v.GetString("group"), Target: a.v.GetString("into")}
			if nj.Source == "" || nj.Target == "" {
				return usageError{fmt.Errorf(`backup needs --group DEVICE-GROUP and --into BACKUP-GROUP, e.g. fleetvault backup --group "Model House" --into models`)}
			}
			var err error
			if nj.Rollout, err = rolloutFromFlags(a); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			return runJob(ctx, a, newRemote(cmd, a), nj, jobOutput{asJSON: a.v.GetBool("json"), detach: a.v.GetBool("detach")})
		},
	}
	f := c.Flags()
	f.String("group", "", "the device group to back up (required)")
	f.String("into", "", "the backup group the backups go to (required)")
	addRolloutFlags(f, false)
	addJobOutputFlags(f)
	addServerFlags(c, false)
	return c
}
