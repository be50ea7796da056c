package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
)

// certStore certifies backups; *apiclient.Client and the service's Session
// (direct mode) both implement it.
type certStore interface {
	Certification(ctx context.Context, backup string) (apiclient.Certification, error)
	Certify(ctx context.Context, backup string, req apiclient.CertifyRequest) (apiclient.Certification, error)
	TestRestore(ctx context.Context, backup string, req apiclient.TestRestoreRequest) (apiclient.Certification, error)
	Certifications(ctx context.Context, q apiclient.CertificationQuery) ([]apiclient.Certification, error)
	GroupCertification(ctx context.Context, group string) (apiclient.GroupCertification, error)
	CertificationPolicies(ctx context.Context) ([]apiclient.CertPolicy, error)
	SetCertificationPolicy(ctx context.Context, p apiclient.CertPolicy) (apiclient.CertPolicy, error)
}

const certifyHelp = `

A backup is unknown until its data owner certifies it (certified) or refuses
it (not-certified), usually after a test restore. The policy of the device's
category makes certifications of critical devices lapse back to unknown
(by default after 90 days) and reminds owners while a backup is unknown
(by default every 7 days for critical devices, 30 for the others).`

// CertifyOptions are the flags of certify BACKUP.
type CertifyOptions struct {
	Yes, No bool
	Note    string
	JSON    bool
}

// AddFlags adds the flags of certify to f.
func (o *CertifyOptions) AddFlags(f *pflag.FlagSet) {
	f.BoolVar(&o.Yes, "yes", false, "certify the backup: it restores satisfactorily")
	f.BoolVar(&o.No, "no", false, "refuse it (not-certified): its owner and the admins are told")
	f.StringVar(&o.Note, "note", "", "why, for the record (at most 2000 bytes)")
	f.BoolVar(&o.JSON, "json", false, "print the certification as JSON")
}

func newCertifyCommand(a *app) *cobra.Command {
	var o CertifyOptions
	c := &cobra.Command{
		Use:   "certify BACKUP --yes|--no [--note TEXT]",
		Short: "Certify backups after a test restore, and list their certification",
		Long: `certify records the data owner's decision on a backup (its id as
fleetvault backups list shows it): --yes certifies it, --no refuses it. The
backup's owner or an admin decides; an operator may run test restores but
not certify. Every change is in the audit log (fleetvault audit).` + certifyHelp + directStoreHelp + exitCodesHelp,
		Example: `  fleetvault certify test 0000000000000001 --into twin
  fleetvault certify 0000000000000001 --yes --note "twin restore verified"
  fleetvault certify list --state unknown`,
		Args: exactArgs(1, "certify needs one backup id and --yes or --no; list backups with fleetvault backups list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Yes == o.No {
				return usageError{errors.New("certify: give exactly one of --yes (certified) or --no (not-certified)")}
			}
			req := apiclient.CertifyRequest{State: catalog.CertCertified, Note: o.Note}
			if o.No {
				req.State = catalog.CertNotCertified
			}
			return withCertStore(a, newRemote(cmd, a), false, func(s certStore) error {
				cert, err := s.Certify(cmd.Context(), args[0], req)
				if err != nil {
					return err
				}
				return renderCert(a.stdout, cert, o.JSON)
			})
		},
	}
	o.AddFlags(c.Flags())
	addServerFlags(c, true)
	c.AddCommand(newCertifyShowCommand(a), newCertifyListCommand(a), newCertifyGroupCommand(a), newCertifyTestCommand(a), newCertifyPolicyCommand(a))
	return c
}

// withCertStore runs fn against the server, or the installation directly
// when no server answers.
func withCertStore(a *app, r remote, readOnly bool, fn func(certStore) error) error {
	return withStore(a, r, readOnly, func(s store) error { return fn(s) })
}

func newCertifyShowCommand(a *app) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:     "show BACKUP",
		Short:   "Show a backup's certification and its last test restore's evidence",
		Long:    `show prints a backup's certification: state, who and when, the note, when it lapses, and the evidence of its last test restore.` + directStoreHelp + exitCodesHelp,
		Example: `  fleetvault certify show 0000000000000001 --json`,
		Args:    exactArgs(1, "certify show needs one backup id; list backups with fleetvault backups list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCertStore(a, newRemote(cmd, a), true, func(s certStore) error {
				cert, err := s.Certification(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return renderCert(a.stdout, cert, asJSON)
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the certification as JSON")
	return c
}

// CertifyListOptions are the flags of certify list.
type CertifyListOptions struct {
	apiclient.CertificationQuery
	JSON bool
}

// AddFlags adds the flags of certify list to f.
func (o *CertifyListOptions) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&o.State, "state", "", "only backups in this state: unknown, certified or not-certified")
	f.StringVar(&o.Group, "group", "", "only this backup group's backups")
	f.StringVar(&o.Client, "client", "", "only this device's backups")
	f.BoolVar(&o.Current, "current", false, "only the newest backup of each device")
	f.IntVar(&o.Limit, "limit", 1000, "at most this many (1 to 10000)")
	f.BoolVar(&o.JSON, "json", false, "print the certifications as a JSON array")
}

func newCertifyListCommand(a *app) *cobra.Command {
	var o CertifyListOptions
	c := &cobra.Command{
		Use:     "list [--state unknown|certified|not-certified] [--group G] [--client C] [--current]",
		Short:   "List the certification of backups, newest first",
		Long:    `list prints the certification of the backups you may see, newest backup first.` + certifyHelp + directStoreHelp + exitCodesHelp,
		Example: `  fleetvault certify list --state unknown --current`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.State != "" && catalog.CheckCertState(o.State) != nil {
				return usageError{fmt.Errorf("certify list: --state %q: give unknown, certified or not-certified", o.State)}
			}
			if o.Limit < 1 || o.Limit > 10000 {
				return usageError{fmt.Errorf("certify list: --limit %d: give 1 to 10000", o.Limit)}
			}
			return withCertStore(a, newRemote(cmd, a), true, func(s certStore) error {
				cs, err := s.Certifications(cmd.Context(), o.CertificationQuery)
				if err != nil {
					return err
				}
				if o.JSON {
					return writeJSON(a.stdout, cs)
				}
				return renderCerts(a.stdout, cs)
			})
		},
	}
	o.AddFlags(c.Flags())
	return c
}

func newCertifyGroupCommand(a *app) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "group GROUP",
		Short: "Show a backup group's certification, derived from its current backups",
		Long: `group prints a backup group's certification: certified when the newest
backup of every device in it is, not-certified when any is, else unknown; with
the counts and each current backup.` + directStoreHelp + exitCodesHelp,
		Example: `  fleetvault certify group "Backup Group for Reference IoT from model House"`,
		Args:    exactArgs(1, "certify group needs one backup group name; list them with fleetvault group list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCertStore(a, newRemote(cmd, a), true, func(s certStore) error {
				g, err := s.GroupCertification(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(a.stdout, g)
				}
				fmt.Fprintf(a.stdout, "%s: %s (%d certified, %d not-certified, %d unknown)\n", g.Group, g.State,
					g.Counts[catalog.CertCertified], g.Counts[catalog.CertNotCertified], g.Counts[catalog.CertUnknown])
				return renderCerts(a.stdout, g.Backups)
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print it as JSON")
	return c
}

func newCertifyTestCommand(a *app) *cobra.Command {
	var into string
	var asJSON bool
	c := &cobra.Command{
		Use:   "test BACKUP --into twin|DEVICE",
		Short: "Test-restore a backup into a twin or a test-bench device, and record the evidence",
		Long: `test restores a backup through the real protocol path into a sandbox and
records the evidence on its certification: the job, the hash verification,
the read-back, the restore time (RTO) and the device's settings afterwards.
It never certifies: decide afterwards with certify BACKUP --yes or --no.

--into twin: the server runs a simulated device made from the backup's tag,
registered for the test only (as a test-bench device owned by the backup's
owner) and connected to its embedded MQTT broker like any device; no real
device is contacted. --into DEVICE: a device marked as a test bench
(fleetvault device set DEVICE --test-bench), which is overwritten.

A test restore runs in the server: it needs --server (there is no direct
mode), and a twin needs the server's embedded broker.` + exitCodesHelp,
		Example: `  fleetvault certify test 0000000000000001 --into twin
  fleetvault certify test 0000000000000001 --into lab-thermostat`,
		Args: exactArgs(1, "certify test needs one backup id and --into twin or --into DEVICE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if into == "" {
				return usageError{errors.New("certify test: give --into twin or --into DEVICE (a device marked as a test bench)")}
			}
			r := newRemote(cmd, a)
			cert, err := r.client.TestRestore(cmd.Context(), args[0], apiclient.TestRestoreRequest{Into: into})
			if noServer(err) {
				return r.needServer("a test restore", err)
			}
			if err != nil && cert.Backup == "" {
				return r.explain(err)
			}
			if rerr := renderCert(a.stdout, cert, asJSON); rerr != nil {
				return rerr
			}
			return r.explain(err)
		},
	}
	c.Flags().StringVar(&into, "into", "", "twin, or the id of a device marked as a test bench")
	c.Flags().BoolVar(&asJSON, "json", false, "print the certification with its evidence as JSON")
	return c
}

func newCertifyPolicyCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "policy",
		Short: "Show and set the certification policy of each device category",
		Long: `policy shows and sets, per device category (critical, non-critical), after
how many days a certification lapses back to unknown and how often owners
are reminded while a backup is unknown. Defaults (nothing stored): critical
lapse 90, remind 7; non-critical no lapse, remind 30. Only an admin sets them.` + directStoreHelp + exitCodesHelp,
		Args: cobra.NoArgs,
	}
	c.AddCommand(newCertifyPolicyListCommand(a), newCertifyPolicySetCommand(a))
	return c
}

func newCertifyPolicyListCommand(a *app) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "list",
		Short: "List the certification policies",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withCertStore(a, newRemote(cmd, a), true, func(s certStore) error {
				ps, err := s.CertificationPolicies(cmd.Context())
				if err != nil {
					return err
				}
				return renderPolicies(a.stdout, ps, asJSON)
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the policies as JSON")
	return c
}

func newCertifyPolicySetCommand(a *app) *cobra.Command {
	var lapse, remind int
	c := &cobra.Command{
		Use:     "set CATEGORY [--lapse-days N] [--remind-days M]",
		Short:   "Set a category's certification policy (0 days: never)",
		Example: `  fleetvault certify policy set critical --lapse-days 90 --remind-days 7`,
		Args:    exactArgs(1, "certify policy set needs a category: critical or non-critical"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			if !f.Changed("lapse-days") && !f.Changed("remind-days") {
				return usageError{errors.New("certify policy set: give --lapse-days, --remind-days or both")}
			}
			return withCertStore(a, newRemote(cmd, a), false, func(s certStore) error {
				ps, err := s.CertificationPolicies(cmd.Context())
				if err != nil {
					return err
				}
				p := apiclient.CertPolicy{Category: args[0]}
				for _, old := range ps {
					if old.Category == args[0] {
						p = old
					}
				}
				if f.Changed("lapse-days") {
					p.LapseDays = lapse
				}
				if f.Changed("remind-days") {
					p.RemindDays = remind
				}
				out, err := s.SetCertificationPolicy(cmd.Context(), p)
				if err != nil {
					return err
				}
				return renderPolicies(a.stdout, []apiclient.CertPolicy{out}, false)
			})
		},
	}
	c.Flags().IntVar(&lapse, "lapse-days", 0, "certified backups go back to unknown after this many days (0: never)")
	c.Flags().IntVar(&remind, "remind-days", 0, "remind the owner every this many days while unknown (0: never)")
	return c
}

func renderPolicies(w io.Writer, ps []apiclient.CertPolicy, asJSON bool) error {
	if asJSON {
		return writeJSON(w, ps)
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "CATEGORY\tLAPSE\tREMIND\t")
	for _, p := range ps {
		def := ""
		if p.Default {
			def = "(default)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Category, days(p.LapseDays), days(p.RemindDays), def)
	}
	return tw.Flush()
}

func days(n int) string {
	if n == 0 {
		return "never"
	}
	return fmt.Sprintf("%d days", n)
}

func renderCerts(w io.Writer, cs []apiclient.Certification) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "BACKUP\tCLIENT\tGROUP\tBACKED UP\tCATEGORY\tSTATE\tBY\tAT")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Backup, c.Client, c.Group, c.BackupTime.UTC().Format(time.RFC3339), c.Category, c.State, c.By, timeText(c.At))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d backup(s)\n", len(cs))
	return err
}

func timeText(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func renderCert(w io.Writer, c apiclient.Certification, asJSON bool) error {
	if asJSON {
		return writeJSON(w, c)
	}
	tw, row := newFieldTable(w)
	row("Backup", c.Backup)
	row("Client", c.Client)
	row("Group", c.Group)
	row("Owner", c.Owner)
	row("Category", c.Category)
	row("Backed up", c.BackupTime.UTC().Format(time.RFC3339))
	row("State", c.State)
	row("By", c.By)
	row("At", timeText(c.At))
	row("Note", c.Note)
	row("Lapses", timeText(c.LapsesAt))
	row("Reminded", timeText(c.RemindedAt))
	if e := c.Evidence; e != nil {
		row("Test restore", fmt.Sprintf("into %s (%s), job %s, by %s at %s", e.Into, e.Device, e.Job, e.By, e.At.UTC().Format(time.RFC3339)))
		if e.Error != "" {
			row("  failed", e.Error)
		}
		row("  verified", fmt.Sprintf("%t (device acknowledged the backup's hash)", e.Verified))
		row("  read back", fmt.Sprintf("%t (settings read back hash as the backup's)", e.ReadBack))
		row("  RTO", (time.Duration(e.RTOMillis) * time.Millisecond).String())
		if e.SettingsHash != "" {
			row("  settings", fmt.Sprintf("%d bytes, sha256 %s", e.SettingsSize, e.SettingsHash))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if c.Evidence != nil && len(c.Evidence.Settings) > 0 {
		var v any
		if json.Unmarshal(c.Evidence.Settings, &v) == nil {
			s, _ := json.MarshalIndent(v, "  ", "  ")
			fmt.Fprintf(w, "Settings after the test restore:\n  %s\n", s)
		}
	}
	return nil
}
