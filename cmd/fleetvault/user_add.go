package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

type userAddOptions struct {
	role string
	pw   passwordOptions
}

func newUserAddCommand(a *app) *cobra.Command {
	var o userAddOptions
	c := &cobra.Command{
		Use:   "add NAME --role admin|operator|owner [--password-stdin]",
		Short: "Add a user with a role and a password",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := o.pw.read(cmd, args[0])
			if err != nil {
				return err
			}
			return withAdmin(cmd, a, func(ls peopleStore) error {
				if err := ls.AddUser(cmd.Context(), args[0], o.role, pw); err != nil {
					return fmt.Errorf("user add: %w", err)
				}
				fmt.Fprintf(a.stdout, "added user %q (role %s)\n", args[0], o.role)
				return nil
			})
		},
	}
	c.Flags().StringVar(&o.role, "role", "", "admin, operator or owner (required)")
	_ = c.MarkFlagRequired("role")
	o.pw.AddFlags(c)
	return c
}
