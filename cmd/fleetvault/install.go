package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/fleetvault/fleetvault/catalog"
)

func newInstallCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "install --mbr FILE [--site-address ADDR] [--write-config FILE]",
		Short: "Point this server at an existing installation's master backup record",
		Long: `install is the article's vendor switch and DR start: point a new server at
an existing (possibly replicated) master backup record. It opens the
installation read-only, reports what it found (devices, groups, pieces,
whether this host is the DR site), and with --write-config writes a
configuration file so later commands use this MBR and site address.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			mbr, err := mbrPath(a)
			if err != nil {
				return err
			}
			return runInstall(a, mbr, a.v.GetString("site-address"), a.v.GetString("write-config"))
		},
	}
	c.Flags().String("site-address", "", "this host's server address (equal to the MBR's dr_server means DR mode)")
	c.Flags().String("write-config", "", "write a configuration file naming the MBR and site address")
	return c
}

func runInstall(a *app, mbr, site, config string) error {
	key, err := installKey(a, mbr)
	if err != nil {
		return err
	}
	c, err := catalog.Open(mbr, catalog.Options{Logger: a.log, SiteAddress: site, ReadOnly: true, Key: key})
	if err != nil {
		return err
	}
	defer c.Close()
	devices := 0
	if err := c.Devices(func(catalog.Device) error { devices++; return nil }); err != nil {
		return err
	}
	groups, err := c.Groups()
	if err != nil {
		return err
	}
	pieces, err := c.Pieces(catalog.Query{})
	if err != nil {
		return err
	}
	m := c.MBR()
	fmt.Fprintf(a.stdout, "installation %s: %d devices, %d groups, %d pieces in %d catalog(s)\n", m.Dir(), devices, len(groups), len(pieces), len(m.CatalogNames()))
	fmt.Fprintf(a.stdout, "site server %s, DR server %s\n", orNone(m.Server), orNone(m.DRServer))
	if c.DRMode() {
		rules, err := c.Replication()
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "DR mode: this host is the DR server; %d replication rule(s) rewrite identifiers\n", len(rules))
	}
	if config == "" {
		return nil
	}
	abs, err := filepath.Abs(mbr)
	if err != nil {
		return err
	}
	data, err := yaml.Marshal(map[string]string{"mbr": abs, "site-address": site})
	if err != nil {
		return err
	}
	if err := os.WriteFile(config, data, 0o644); err != nil {
		return fmt.Errorf("install: write configuration: %w", err)
	}
	fmt.Fprintf(a.stdout, "wrote %s\n", config)
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
