package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newUserListCommand(a *app) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "list [--json]",
		Short: "List the users with their roles (never their password hashes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAdmin(cmd, a, func(ls peopleStore) error {
				us, err := ls.Users(cmd.Context())
				if err != nil {
					return fmt.Errorf("user list: %w", err)
				}
				if asJSON {
					return writeJSON(a.stdout, us)
				}
				if len(us) == 0 {
					fmt.Fprintln(a.stdout, "no users; add one with fleetvault user add NAME --role owner")
					return nil
				}
				tw := newTable(a.stdout)
				fmt.Fprintln(tw, "NAME\tROLE\tSTATE\tCREATED")
				for _, u := range us {
					state := "enabled"
					if u.Disabled {
						state = "disabled"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Name, u.Role, state, u.Created.Format(time.RFC3339))
				}
				return tw.Flush()
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
