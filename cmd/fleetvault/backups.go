package main

import (
	"github.com/fleetvault/fleetvault/apiclient"

	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// backupStore lists, shows and compares backups.
type backupStore interface {
	Backups(ctx context.Context, q apiclient.BackupQuery) ([]apiclient.Backup, error)
	Backup(ctx context.Context, id string) (apiclient.Backup, error)
	DiffBackups(ctx context.Context, a, b string) (apiclient.Diff, error)
}

func newBackupsCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "backups",
		Short: "List, show and compare backups (data pieces) in the catalog",
		Long: `backups reads the backup catalog: every backup is one settings document of
one device at one time, with the device's tag.` + directStoreHelp + exitCodesHelp,
		Args: cobra.NoArgs,
	}
	addServerFlags(c, true)
	c.AddCommand(newBackupsListCommand(a), newBackupsShowCommand(a), newBackupsDiffCommand(a))
	return c
}

func newBackupsListCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "list [--client C] [--group G] [--tag KEY=VALUE] [--limit N]",
		Short: "List backups, newest first",
		Long:  `list prints backups, newest first, filtered by client, backup group or tag.` + directStoreHelp + exitCodesHelp,
		Example: `  fleetvault backups list --group "Backup Group for Reference IoT from model House"
  fleetvault backups list --tag zone=South --limit 10 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := apiclient.BackupQuery{Client: a.v.GetString("client"), Group: a.v.GetString("group"), Tag: a.v.GetString("tag"), Limit: a.v.GetInt("limit")}
			if q.Tag != "" {
				if k, _, ok := strings.Cut(q.Tag, "="); !ok || strings.TrimSpace(k) == "" {
					return usageError{fmt.Errorf("backups list: --tag %q is not KEY=VALUE, e.g. --tag zone=South", q.Tag)}
				}
			}
			if q.Limit < 1 || q.Limit > 10000 {
				return usageError{fmt.Errorf("backups list: --limit %d: give 1 to 10000", q.Limit)}
			}
			return runBackupsList(cmd.Context(), a, newRemote(cmd, a), q, a.v.GetBool("json"))
		},
	}
	f := c.Flags()
	f.String("client", "", "only this device's backups")
	f.String("group", "", "only this backup group's backups")
	f.String("tag", "", "only backups whose tag has KEY=VALUE")
	f.Int("limit", 100, "at most this many backups (1 to 10000)")
	f.Bool("json", false, "print the backups as a JSON array")
	return c
}

func runBackupsList(ctx context.Context, a *app, r remote, q apiclient.BackupQuery, asJSON bool) error {
	var bs []apiclient.Backup
	err := withStore(a, r, true, func(s store) error {
		var err error
		bs, err = s.Backups(ctx, q)
		return err
	})
	if err != nil {
		return err
	}
	if asJSON {
		if bs == nil {
			bs = []apiclient.Backup{}
		}
		return writeJSON(a.stdout, bs)
	}
	return renderBackups(a.stdout, bs)
}

func renderBackups(w io.Writer, bs []apiclient.Backup) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tCLIENT\tGROUP\tTIME\tSIZE\tCERTIFICATION\tTAG")
	for _, b := range bs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", b.ID, b.Client, b.Group, b.Time.UTC().Format(time.RFC3339), b.Size, certText(b.Certification), b.Tag.String())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d backup(s)\n", len(bs))
	return nil
}

func newBackupsShowCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:     "show ID",
		Short:   "Show one backup with its settings",
		Long:    `show prints a backup's catalog record and its settings as JSON.` + directStoreHelp + exitCodesHelp,
		Example: `  fleetvault backups show p-000001-0001`,
		Args:    exactArgs(1, "backups show needs one backup id; list them with fleetvault backups list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBackupsShow(cmd.Context(), a, newRemote(cmd, a), args[0], a.v.GetBool("json"))
		},
	}
	c.Flags().Bool("json", false, "print the backup as JSON")
	return c
}

func runBackupsShow(ctx context.Context, a *app, r remote, id string, asJSON bool) error {
	var b apiclient.Backup
	err := withStore(a, r, true, func(s store) error {
		var err error
		b, err = s.Backup(ctx, id)
		return err
	})
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(a.stdout, b)
	}
	return renderBackup(a.stdout, b)
}

func renderBackup(w io.Writer, b apiclient.Backup) error {
	tw, row := newFieldTable(w)
	row("ID", b.ID)
	row("Client", b.Client)
	row("Name", b.Name)
	row("Type", b.Type)
	row("Group", b.Group)
	row("Job", b.Job)
	row("Owner", b.Owner)
	row("Location", b.Location)
	row("Time", b.Time.UTC().Format(time.RFC3339))
	if b.Expiry != nil {
		row("Expiry", b.Expiry.UTC().Format(time.RFC3339))
	}
	row("Size", strconv.FormatInt(b.Size, 10))
	row("Tag", b.Tag.String())
	row("Hash", b.Hash)
	if c := b.Certification; c != nil {
		text := c.State
		if c.By != "" {
			text += " by " + c.By + " at " + timeText(c.At)
		}
		row("Certification", text)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "Settings:")
	s, err := json.MarshalIndent(b.Settings, "  ", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  %s\n", s)
	return nil
}

func newBackupsDiffCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "diff A B",
		Short: "Show what backup B changes relative to backup A",
		Long: `diff compares two backups' settings key by key: + added in B, - removed in
B, ~ changed (from A's value to B's). Paths are JSON Pointers into the
settings. The exit status is 0 whether or not they differ.` + directStoreHelp + exitCodesHelp,
		Example: `  fleetvault backups diff p-000001-0001 p-000007-0001`,
		Args:    exactArgs(2, "backups diff needs two backup ids, e.g. fleetvault backups diff ID-A ID-B"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBackupsDiff(cmd.Context(), a, newRemote(cmd, a), args[0], args[1], a.v.GetBool("json"))
		},
	}
	c.Flags().Bool("json", false, "print the difference as JSON")
	return c
}

func runBackupsDiff(ctx context.Context, a *app, r remote, ida, idb string, asJSON bool) error {
	var d apiclient.Diff
	err := withStore(a, r, true, func(s store) error {
		var err error
		d, err = s.DiffBackups(ctx, ida, idb)
		return err
	})
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(a.stdout, d)
	}
	return renderDiff(a.stdout, d)
}

func renderDiff(w io.Writer, d apiclient.Diff) error {
	if d.Same {
		_, err := fmt.Fprintf(w, "%s and %s hold the same settings\n", d.A, d.B)
		return err
	}
	fmt.Fprintf(w, "--- %s\n+++ %s\n", d.A, d.B)
	for _, c := range d.Added {
		fmt.Fprintf(w, "+ %s: %s\n", c.Path, jsonText(c.To))
	}
	for _, c := range d.Removed {
		fmt.Fprintf(w, "- %s: %s\n", c.Path, jsonText(c.From))
	}
	for _, c := range d.Changed {
		fmt.Fprintf(w, "~ %s: %s -> %s\n", c.Path, jsonText(c.From), jsonText(c.To))
	}
	_, err := fmt.Fprintf(w, "%d added, %d removed, %d changed\n", len(d.Added), len(d.Removed), len(d.Changed))
	return err
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// certText is a backup's certification state in a listing ("-" for a
// piece that is not a backup, e.g. an undo snapshot).
func certText(c *apiclient.BackupCertification) string {
	if c == nil {
		return "-"
	}
	return c.State
}
