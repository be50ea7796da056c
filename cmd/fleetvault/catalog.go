package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/catalog/repokey"
)

// mbrPath returns the installation's MBR from --mbr, FLEETVAULT_MBR or the
// configuration file.
func mbrPath(a *app) (string, error) {
	p := a.v.GetString("mbr")
	if p == "" {
		return "", usageError{errors.New("no installation given: pass --mbr FILE, set FLEETVAULT_MBR, or put mbr: in the configuration file (fleetvault init creates one)")}
	}
	return p, nil
}

func openCatalog(a *app, readOnly bool) (*catalog.Catalog, error) {
	p, err := mbrPath(a)
	if err != nil {
		return nil, err
	}
	key, err := installKey(a, p)
	if err != nil {
		return nil, err
	}
	return catalog.Open(p, catalog.Options{Logger: a.log, SiteAddress: a.v.GetString("site-address"), ReadOnly: readOnly, Key: key})
}

func newCatalogCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "catalog",
		Short: "List, prune, export and import the backup catalog",
		Args:  cobra.NoArgs,
	}
	c.PersistentFlags().String("site-address", "", "this host's server address (equal to the MBR's dr_server means DR mode)")
	c.AddCommand(newCatalogListCommand(a), newCatalogRestoresCommand(a), newCatalogPruneCommand(a), newCatalogExportCommand(a), newCatalogImportCommand(a))
	return c
}

func newCatalogListCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "list [--client C] [--group G] [--tag KEY=VALUE] [--since T] [--until T]",
		Short: "List data pieces, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := catalog.Query{Client: a.v.GetString("client"), Group: a.v.GetString("group"), Limit: a.v.GetInt("limit")}
			if tag := a.v.GetString("tag"); tag != "" {
				k, v, ok := strings.Cut(tag, "=")
				if !ok || k == "" {
					return usageError{fmt.Errorf("catalog list: --tag %q is not KEY=VALUE", tag)}
				}
				q.TagKey, q.TagValue = k, v
			}
			var err error
			if q.From, err = flagTime(a, "since"); err != nil {
				return err
			}
			if q.To, err = flagTime(a, "until"); err != nil {
				return err
			}
			return runCatalogList(a, q, a.v.GetBool("json"))
		},
	}
	f := c.Flags()
	f.String("client", "", "only this client")
	f.String("group", "", "only this backup group")
	f.String("tag", "", "only pieces whose tag has KEY=VALUE")
	f.String("since", "", "only pieces backed up at or after this time (RFC 3339)")
	f.String("until", "", "only pieces backed up at or before this time (RFC 3339)")
	f.Int("limit", 100, "at most this many pieces (0: all)")
	f.Bool("json", false, "print JSON, one piece per line")
	return c
}

func flagTime(a *app, name string) (time.Time, error) {
	s := a.v.GetString(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return t, usageError{fmt.Errorf("--%s %q is not an RFC 3339 time such as 2026-03-01T12:00:00Z", name, s)}
	}
	return t, nil
}

func runCatalogList(a *app, q catalog.Query, asJSON bool) error {
	c, err := openCatalog(a, true)
	if err != nil {
		return err
	}
	defer c.Close()
	ps, err := c.Pieces(q)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		for _, p := range ps {
			if err := enc.Encode(p); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCLIENT\tNAME\tGROUP\tTIME\tSIZE\tCONTENT")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%.12s\n", p.ID, p.Client, p.Name, p.Group, p.Time.Format(time.RFC3339), p.Size, p.Ref)
	}
	return tw.Flush()
}

func newCatalogRestoresCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "restores [--device D] [--job J]",
		Short: "List the restore history: what was restored to which device, when, by which job, with what outcome",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := catalog.RestoreQuery{Device: a.v.GetString("device"), Job: a.v.GetString("job"), Limit: a.v.GetInt("limit")}
			return runCatalogRestores(a, q, a.v.GetBool("json"))
		},
	}
	f := c.Flags()
	f.String("device", "", "only this device")
	f.String("job", "", "only this job")
	f.Int("limit", 100, "at most this many events (0: all)")
	f.Bool("json", false, "print JSON, one event per line")
	return c
}

func runCatalogRestores(a *app, q catalog.RestoreQuery, asJSON bool) error {
	c, err := openCatalog(a, true)
	if err != nil {
		return err
	}
	defer c.Close()
	evs, err := c.Restores(q)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		for _, e := range evs {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tDEVICE\tJOB\tPIECE\tOUTCOME\tDETAIL")
	for _, e := range evs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Format(time.RFC3339), e.Device, e.Job, e.PieceID, e.Outcome, e.Detail)
	}
	return tw.Flush()
}

func newCatalogPruneCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "prune [--dry-run] [--client C | --group G] [--keep-last N ...] [--save]",
		Short: "Remove expired pieces and pieces no keep rule keeps; reclaim their space",
		Long: `prune applies expiry dates and keep rules (like restic's forget): the rules
stored in the resource database, plus one given with --client or --group and
--keep-* flags (which replaces a stored rule for the same client or group;
--save stores it). With --dry-run it lists what would go and changes nothing.

--group prunes that backup group only, as a schedule does after its backup:
"catalog prune --dry-run --group B" shows what B's retention would remove
now, the same decision as "schedule show NAME --prune-preview".

A device's newest certified backup is always kept (fleetvault certify), and
listed with the reason.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keep, err := keepRule(cmd.Flags())
			if err != nil {
				return err
			}
			client, group := a.v.GetString("client"), a.v.GetString("group")
			if client != "" && group != "" {
				return usageError{errors.New("catalog prune: give --client or --group, not both")}
			}
			var rule *catalog.KeepRule
			if keep != nil {
				if client == "" && group == "" {
					return usageError{errors.New("catalog prune: --keep-* flags need --client or --group: the client or backup group the rule is for")}
				}
				rule = &catalog.KeepRule{Client: client, Group: group, Last: keep.Last, Hourly: keep.Hourly, Daily: keep.Daily,
					Weekly: keep.Weekly, Monthly: keep.Monthly, Yearly: keep.Yearly}
			}
			return runCatalogPrune(cmd.Context(), a, rule, group, a.v.GetBool("dry-run"), a.v.GetBool("save"))
		},
	}
	f := c.Flags()
	f.Bool("dry-run", false, "only list what would be removed")
	f.String("client", "", "the client the --keep-* rule is for")
	f.String("group", "", "prune only this backup group (and the --keep-* rule is for it)")
	for _, kf := range keepFlags {
		f.Int(kf.name, 0, kf.help)
	}
	f.Bool("save", false, "store the --keep-* rule in the resource database")
	return c
}

// runCatalogPrune prunes the catalog, or only backup group group when it is
// set, with the stored keep rules and rule (nil: none) in place of the
// stored one of its client or group.
func runCatalogPrune(ctx context.Context, a *app, rule *catalog.KeepRule, group string, dryRun, save bool) error {
	c, err := openCatalog(a, dryRun && !save)
	if err != nil {
		return err
	}
	defer c.Close()
	rules, err := c.KeepRules()
	if err != nil {
		return err
	}
	if rule != nil {
		if save {
			if err := c.SetKeepRules([]catalog.KeepRule{*rule}); err != nil {
				return err
			}
		}
		kept := []catalog.KeepRule{*rule}
		for _, r := range rules {
			if r.Client != rule.Client || r.Group != rule.Group {
				kept = append(kept, r)
			}
		}
		rules = kept
	} else if save {
		return usageError{errors.New("catalog prune: --save needs --client or --group with --keep-* flags")}
	}
	var rep catalog.PruneReport
	if group != "" {
		rep, err = c.PruneGroup(ctx, group, rules, dryRun)
	} else {
		rep, err = c.Prune(ctx, rules, dryRun)
	}
	if err != nil {
		return err
	}
	verb := "removed"
	if dryRun {
		verb = "would remove"
	}
	for _, p := range rep.Removed {
		fmt.Fprintf(a.stdout, "%s %s %s %s %s: %s\n", verb, p.ID, p.Client, p.Name, p.Time.Format(time.RFC3339), p.Reason)
	}
	for _, p := range rep.Protected {
		fmt.Fprintf(a.stdout, "kept %s %s %s %s: %s\n", p.ID, p.Client, p.Name, p.Time.Format(time.RFC3339), p.Reason)
	}
	fmt.Fprintf(a.stdout, "%s %d piece(s), kept %d, freed %d bytes\n", verb, len(rep.Removed), rep.Kept, rep.Freed)
	return nil
}

func newCatalogExportCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "export [--format sql|json] [--output FILE]",
		Short: "Write the catalogs and resource database in the open standard's form",
		Long: `export writes every catalog and the resource database as portable SQL
(loads unchanged into sqlite3 and PostgreSQL; docs/spec/catalog.sql) or JSON.
Both carry the content (base64), so an export is a full copy that
catalog import reads back.

An export is the standard's interchange form: settings and device credentials
are IN CLEAR in it, even from an encrypted installation. It says so (a warning
on standard error, a comment or "notice" field in the file), --output files
are created readable by their owner only (0600), and --encrypt seals the
whole file with a passphrase (from --export-password-file or a prompt;
catalog import asks for it the same way).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCatalogExport(a, a.v.GetString("format"), a.v.GetString("output"), a.v.GetBool("encrypt"))
		},
	}
	c.Flags().String("format", "json", "sql or json")
	c.Flags().String("output", "", "write to FILE instead of standard output")
	c.Flags().Bool("encrypt", false, "seal the export with a passphrase (argon2id, XChaCha20-Poly1305)")
	c.Flags().String("export-password-file", "", "file holding the export's passphrase (--encrypt)")
	addKDFFlag(c.Flags())
	return c
}

func runCatalogExport(a *app, format, output string, encrypt bool) error {
	c, err := openCatalog(a, true)
	if err != nil {
		return err
	}
	defer c.Close()
	var w io.Writer = a.stdout
	if output != "" {
		f, err := os.OpenFile(output, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("catalog export: %w", err)
		}
		defer f.Close()
		if err := f.Chmod(0o600); err != nil { // an existing file keeps its mode otherwise
			return fmt.Errorf("catalog export: %w", err)
		}
		w = f
	}
	if encrypt {
		pass, err := exportPassphrase(a)
		if err != nil {
			return err
		}
		sw, err := repokey.NewWriter(w, pass, kdfParams(a))
		if err != nil {
			return fmt.Errorf("catalog export: %w", err)
		}
		if err := c.Export(sw, format); err != nil {
			return err
		}
		if err := sw.Close(); err != nil {
			return fmt.Errorf("catalog export: %w", err)
		}
	} else {
		fmt.Fprintf(a.stderr, "warning: %s\n", catalog.ExportNotice)
		if err := c.Export(w, format); err != nil {
			return err
		}
	}
	if f, ok := w.(*os.File); ok && output != "" {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("catalog export: %w", err)
		}
	}
	return nil
}

func newCatalogImportCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "import [--format sql|json] FILE",
		Short: "Read an export back into this installation (FILE - is standard input)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCatalogImport(cmd.InOrStdin(), a, a.v.GetString("format"), args[0])
		},
	}
	c.Flags().String("format", "json", "sql or json")
	c.Flags().String("export-password-file", "", "file holding the passphrase of an encrypted export")
	return c
}

// exportPassphrase is the passphrase of an encrypted export:
// --export-password-file, or a prompt on a terminal.
func exportPassphrase(a *app) ([]byte, error) {
	if f := a.v.GetString("export-password-file"); f != "" {
		return readPassphraseFile(f)
	}
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return nil, usageError{errors.New("an encrypted export needs a passphrase: give --export-password-file FILE, or run on a terminal to type it")}
	}
	return promptPassphrase(a, "the export's passphrase")
}

func runCatalogImport(stdin io.Reader, a *app, format, file string) error {
	r := stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return fmt.Errorf("catalog import: %w", err)
		}
		defer f.Close()
		r = f
	}
	br := bufio.NewReader(r)
	if head, _ := br.Peek(64); repokey.IsEncrypted(head) {
		pass, err := exportPassphrase(a)
		if err != nil {
			return err
		}
		if r, err = repokey.NewReader(br, pass); err != nil {
			return fmt.Errorf("catalog import %s: %w", file, err)
		}
	} else {
		r = br
	}
	c, err := openCatalog(a, false)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Import(r, format); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "imported %s into %s\n", file, c.MBR().Dir())
	return nil
}
