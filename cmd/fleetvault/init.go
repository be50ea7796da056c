package main

import (
	"github.com/fleetvault/fleetvault/service"

	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fleetvault/fleetvault/catalog"
)

func newInitCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "init --dir DIR",
		Short: "Create a fresh installation and its master backup record",
		Long: `init creates an installation in DIR: an empty resource database, default
catalog and method repository, and the master backup record (MBR) that
points at them, with paths relative to the MBR so a copied installation
still works. Every other command finds the installation with --mbr (or
FLEETVAULT_MBR, or mbr: in the configuration file).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInit(a, a.v.GetString("dir"), catalog.InitOptions{
				Server: a.v.GetString("server"), DRServer: a.v.GetString("dr-server"),
			})
		},
	}
	f := c.Flags()
	f.String("dir", "", "directory of the new installation (created if missing)")
	f.String("server", "", "this site's backup server address, recorded in the MBR")
	f.String("dr-server", "", "the DR site's backup server address, recorded in the MBR")
	return c
}

func runInit(a *app, dir string, opts catalog.InitOptions) error {
	if dir == "" {
		return usageError{errors.New("init: --dir is required")}
	}
	mbr, err := catalog.Init(dir, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "created installation %s\nmaster backup record: %s\nuse it with: --mbr %s  or  export FLEETVAULT_MBR=%s\n", dir, mbr, mbr, mbr)
	token, err := service.OpenTokens(service.TokenFile(mbr)).Create("admin")
	if err != nil {
		return fmt.Errorf("init: create the admin API token: %w", err)
	}
	fmt.Fprintf(a.stdout, "admin API token (shown only now; store it safely): %s\n", token)
	return nil
}
