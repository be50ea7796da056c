package main

import (
	"github.com/fleetvault/fleetvault/service"

	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/catalog/repokey"
)

func newInitCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "init --dir DIR",
		Short: "Create a fresh installation and its master backup record",
		Long: `init creates an installation in DIR: an empty resource database, default
catalog and method repository, and the master backup record (MBR) that
points at them, with paths relative to the MBR so a copied installation
still works. Every other command finds the installation with --mbr (or
FLEETVAULT_MBR, or mbr: in the configuration file).

The installation is encrypted: settings content and resource records (device
credentials, keys) are sealed with a random repository key, wrapped in a key
file (keys/) by your passphrase. Keep the passphrase safe: without it the
backups cannot be read. --insecure-no-encryption keeps everything in clear,
for a lab; such an installation can be encrypted later with key init.` + passphraseHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInit(a, a.v.GetString("dir"), catalog.InitOptions{
				Server: a.v.GetString("server"), DRServer: a.v.GetString("dr-server"),
			}, !a.v.GetBool("insecure-no-encryption"))
		},
	}
	f := c.Flags()
	f.String("dir", "", "directory of the new installation (created if missing)")
	f.String("server", "", "this site's backup server address, recorded in the MBR")
	f.String("dr-server", "", "the DR site's backup server address, recorded in the MBR")
	f.Bool("insecure-no-encryption", false, "keep settings and device credentials in clear (labs only)")
	addKDFFlag(f)
	return c
}

func runInit(a *app, dir string, opts catalog.InitOptions, encrypt bool) error {
	if dir == "" {
		return usageError{errors.New("init: --dir is required")}
	}
	if encrypt {
		if _, err := os.Stat(filepath.Join(dir, catalog.MBRFile)); err == nil {
			return fmt.Errorf("catalog: init %s: %s %w", dir, filepath.Join(dir, catalog.MBRFile), catalog.ErrExists)
		}
		pass, err := passphrase(a, "the new installation")
		if err != nil {
			return fmt.Errorf("init encrypts the installation: %w; or pass --insecure-no-encryption for a lab", err)
		}
		opts.KeyDir = filepath.Join(dir, "keys")
		if opts.Key, _, err = repokey.Create(opts.KeyDir, pass, kdfParams(a)); err != nil {
			return err
		}
	}
	mbr, err := catalog.Init(dir, opts)
	if err != nil {
		return err
	}
	if encrypt {
		fmt.Fprintf(a.stdout, "encrypted; key file in %s: keep the passphrase safe, without it the backups cannot be read\n", opts.KeyDir)
	} else {
		fmt.Fprintln(a.stderr, "warning: the installation is NOT encrypted (--insecure-no-encryption): settings and device credentials are stored in clear")
	}
	fmt.Fprintf(a.stdout, "created installation %s\nmaster backup record: %s\nuse it with: --mbr %s  or  export FLEETVAULT_MBR=%s\n", dir, mbr, mbr, mbr)
	token, err := service.OpenTokens(service.TokenFile(mbr)).Create("admin")
	if err != nil {
		return fmt.Errorf("init: create the admin API token: %w", err)
	}
	fmt.Fprintf(a.stdout, "admin API token (shown only now; store it safely): %s\n", token)
	return nil
}
