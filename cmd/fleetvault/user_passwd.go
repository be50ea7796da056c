package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newUserPasswdCommand(a *app) *cobra.Command {
	var pw passwordOptions
	c := &cobra.Command{
		Use:   "passwd NAME [--password-stdin]",
		Short: "Replace a user's password",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := pw.read(cmd, args[0])
			if err != nil {
				return err
			}
			return withAdmin(cmd, a, func(ls peopleStore) error {
				if err := ls.SetPassword(cmd.Context(), args[0], p); err != nil {
					return fmt.Errorf("user passwd: %w", err)
				}
				fmt.Fprintf(a.stdout, "changed the password of %q\n", args[0])
				return nil
			})
		},
	}
	pw.AddFlags(c)
	return c
}
