package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fleetvault/fleetvault/catalog"
)

func newCheckCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "check [--read-data]",
		Short: "Verify the catalogs, the resource database and the content store",
		Long: `check verifies every file of the installation named by --mbr: bbolt's page
structure, every record and index entry, and the content store. With
--read-data every stored object is read and its SHA-256 checked. Each
damaged object is printed by name; the exit status is 1 if any was found.
A damaged or truncated file is reported, not a crash.

Every file the MBR names is checked, the job journal (jobs.db) included, and
every record of every file carries a checksum: a damaged record is named by
file, bucket and key. A missing file is reported. An encrypted installation
needs its passphrase.` + passphraseHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			mbr, err := mbrPath(a)
			if err != nil {
				return err
			}
			return runCheck(a, mbr, a.v.GetBool("read-data"))
		},
	}
	c.Flags().Bool("read-data", false, "read every content object and verify its hash")
	return c
}

func runCheck(a *app, mbr string, readData bool) error {
	n := 0
	key, err := installKey(a, mbr)
	if err != nil {
		return err
	}
	err = catalog.Verify(mbr, catalog.Options{Logger: a.log, Key: key}, readData, func(p catalog.Problem) {
		n++
		fmt.Fprintf(a.stdout, "damaged: %s\n", p)
	})
	if err != nil {
		return err
	}
	if n > 0 {
		return exitCodeError{exitError, fmt.Errorf("check: %d damaged object(s) in %s", n, mbr)}
	}
	fmt.Fprintf(a.stdout, "no problems found in %s\n", mbr)
	return nil
}
