package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newUserDisableCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "disable NAME",
		Short: "Disable a user: their tokens are refused from the next request on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAdmin(cmd, a, func(ls peopleStore) error {
				if err := ls.DisableUser(cmd.Context(), args[0]); err != nil {
					return fmt.Errorf("user disable: %w", err)
				}
				fmt.Fprintf(a.stdout, "disabled user %q\n", args[0])
				return nil
			})
		},
	}
}
