package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/fleetvault/fleetvault/apiclient"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/service"
	"github.com/fleetvault/fleetvault/settingsdoc"
)

// profileStore keeps restore profiles and attaches them to backup groups.
type profileStore interface {
	Profiles(ctx context.Context) ([]settingsdoc.Profile, error)
	Profile(ctx context.Context, name string) (settingsdoc.Profile, error)
	PutProfile(ctx context.Context, p settingsdoc.Profile) (settingsdoc.Profile, error)
	AttachProfile(ctx context.Context, group, profile string) (apiclient.GroupProfile, error)
}

const profileHelp = `

A restore profile says which parts of a settings document a restore writes
(docs/spec/profiles.md). Pointers are JSON Pointers (RFC 6901: ~1 for / and
~0 for ~ in a key) with * for every member at one level:

  --keep PTR           the device keeps its own value there (or its absence):
                       /name, /network/*
  --set PTR=TEMPLATE   the value is the text of a Go template over the device:
                       {{.Device.ID}}, {{.Device.Group}}, {{.Tag.zone}} (any
                       tag key, well-known keys normalised), {{.Backup.Client}}
  --only PTR           only these sections come from the backup; the rest of
                       the device's settings stay as they are

Order: only (or the whole backup), then keep, then set. Each device's
document is stored in the catalog, written, and verified by its own hash;
undo puts back the device's exact earlier settings.`

func newProfileCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "profile",
		Short: "Restore profiles: which parts of each device's settings a restore writes",
		Long: `profile manages restore profiles. A restore uses the profile given by
restore --profile, else the one attached to its backup group (fleetvault group
profile), else none (whole documents are written).` + profileHelp + directStoreHelp + exitCodesHelp,
		Args: cobra.NoArgs,
	}
	addServerFlags(c, true)
	c.AddCommand(newProfileSetCommand(a), newProfileListCommand(a), newProfileShowCommand(a))
	return c
}

func newProfileSetCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "set NAME [--keep PTR]... [--set PTR=TEMPLATE]... [--only PTR]...",
		Short: "Create or replace a restore profile",
		Long:  `set stores a profile under NAME, replacing any profile of that name.` + profileHelp + directStoreHelp + exitCodesHelp,
		Example: `  fleetvault profile set keep-identity --keep /name --keep '/network/*'
  fleetvault profile set per-home --keep '/network/*' --set '/name={{.Device.ID}}' --set '/zone={{.Tag.zone}}'
  fleetvault profile set schedules-only --only /schedule`,
		Args: exactArgs(1, "profile set needs one profile name, e.g. fleetvault profile set keep-identity --keep /name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			p := settingsdoc.Profile{Name: args[0]}
			p.Keep, _ = f.GetStringArray("keep")
			p.Only, _ = f.GetStringArray("only")
			sets, _ := f.GetStringArray("set")
			for _, s := range sets {
				as, err := settingsdoc.ParseAssign(s)
				if err != nil {
					return usageError{fmt.Errorf("profile set: --set: %v", err)}
				}
				p.Set = append(p.Set, as)
			}
			if _, err := p.Compile(); err != nil {
				return usageError{fmt.Errorf("profile set: %v", err)}
			}
			var out settingsdoc.Profile
			err := withStore(a, newRemote(cmd, a), false, func(s store) error {
				var err error
				out, err = s.PutProfile(cmd.Context(), p)
				return err
			})
			if err != nil {
				return err
			}
			if a.v.GetBool("json") {
				return writeJSON(a.stdout, out)
			}
			fmt.Fprintf(a.stdout, "stored profile %s\n", out.Name)
			return renderProfile(a.stdout, out)
		},
	}
	f := c.Flags()
	f.StringArray("keep", nil, "a pointer whose value each device keeps, e.g. /name or '/network/*' (repeatable)")
	f.StringArray("set", nil, "PTR=TEMPLATE: a pointer given a templated value, e.g. '/name={{.Device.ID}}' (repeatable)")
	f.StringArray("only", nil, "a pointer to take from the backup, leaving the rest as the device has it (repeatable)")
	f.Bool("json", false, "print the stored profile as JSON")
	return c
}

func newProfileListCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "list",
		Short: "List restore profiles",
		Long:  `list prints every restore profile with its entries.` + directStoreHelp + exitCodesHelp,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ps []settingsdoc.Profile
			err := withStore(a, newRemote(cmd, a), true, func(s store) error {
				var err error
				ps, err = s.Profiles(cmd.Context())
				return err
			})
			if err != nil {
				return err
			}
			if a.v.GetBool("json") {
				if ps == nil {
					ps = []settingsdoc.Profile{}
				}
				return writeJSON(a.stdout, ps)
			}
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "NAME\tENTRIES")
			for _, p := range ps {
				fmt.Fprintf(tw, "%s\t%s\n", p.Name, strings.Join(p.Lines(), "; "))
			}
			return tw.Flush()
		},
	}
	c.Flags().Bool("json", false, "print the profiles as a JSON array")
	return c
}

func newProfileShowCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "show NAME",
		Short: "Show one restore profile",
		Long:  `show prints a profile's entries, one a line.` + directStoreHelp + exitCodesHelp,
		Args:  exactArgs(1, "profile show needs one profile name, e.g. fleetvault profile show keep-identity"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p settingsdoc.Profile
			err := withStore(a, newRemote(cmd, a), true, func(s store) error {
				var err error
				p, err = s.Profile(cmd.Context(), args[0])
				return err
			})
			if err != nil {
				return err
			}
			if a.v.GetBool("json") {
				return writeJSON(a.stdout, p)
			}
			fmt.Fprintf(a.stdout, "profile %s\n", p.Name)
			return renderProfile(a.stdout, p)
		},
	}
	c.Flags().Bool("json", false, "print the profile as JSON")
	return c
}

func newGroupProfileCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "profile BACKUP-GROUP NAME",
		Short: "Attach a restore profile to a backup group (\"\" detaches it)",
		Long: `profile makes NAME the default profile of every restore from BACKUP-GROUP;
restore --profile overrides it and restore --no-profile skips it. Give "" as
NAME to detach.` + directStoreHelp + exitCodesHelp,
		Example: `  fleetvault group profile models keep-identity
  fleetvault group profile models ""`,
		Args: exactArgs(2, "group profile needs a backup group and a profile name, e.g. fleetvault group profile models keep-identity"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var gp apiclient.GroupProfile
			err := withStore(a, newRemote(cmd, a), false, func(s store) error {
				var err error
				gp, err = s.AttachProfile(cmd.Context(), args[0], args[1])
				return err
			})
			if err != nil {
				return err
			}
			if a.v.GetBool("json") {
				return writeJSON(a.stdout, gp)
			}
			if gp.Profile == "" {
				fmt.Fprintf(a.stdout, "restores from %q use no profile\n", args[0])
			} else {
				fmt.Fprintf(a.stdout, "restores from %q use profile %s\n", args[0], gp.Profile)
			}
			return nil
		},
	}
	c.Flags().Bool("json", false, "print the result as JSON")
	return c
}

func renderProfile(w io.Writer, p settingsdoc.Profile) error {
	for _, l := range p.Lines() {
		if _, err := fmt.Fprintf(w, "  %s\n", l); err != nil {
			return err
		}
	}
	return nil
}

// renderPlanDiffs prints, for each device a dry run would write, what the
// write would change in its settings.
func renderPlanDiffs(w io.Writer, entries []grouprestore.PlanEntry) error {
	for _, e := range entries {
		if e.Diff == nil {
			continue
		}
		d := *e.Diff
		d.A, d.B = e.Device+" now", e.Device+" after the restore"
		if err := renderDiff(w, d); err != nil {
			return err
		}
	}
	return nil
}

// checkRestoreTarget refuses a restore request that names no destination, or
// two, before it reaches the server.
func checkRestoreTarget(nj apiclient.NewJob) error {
	if _, err := service.ParseAsOf(nj.AsOf); err != nil {
		return fmt.Errorf("restore: --as-of: %v", err)
	}
	if nj.Device == "" {
		switch {
		case nj.Piece != "" || nj.FromDevice != "" || nj.AllowTagMismatch:
			return errors.New("restore: --piece, --from-device and --allow-tag-mismatch go with --to-device DEVICE")
		case nj.Source == "" || nj.Target == "":
			return errors.New("restore needs --from BACKUP-GROUP and --to DEVICE-GROUP, e.g. fleetvault restore --from models --to homes (or --to-device DEVICE with --piece ID or --from-device OLD)")
		}
		return nil
	}
	switch {
	case nj.Target != "":
		return errors.New("restore: give --to DEVICE-GROUP or --to-device DEVICE, not both")
	case (nj.Piece == "") == (nj.FromDevice == ""):
		return errors.New("restore --to-device needs exactly one of --piece ID or --from-device OLD")
	case nj.Piece != "" && nj.AsOf != "":
		return errors.New("restore: --as-of chooses among backups; --piece names one already")
	}
	return nil
}

// restoreNotes says how a restore chose what it writes: its profile, its
// as-of time, an allowed tag mismatch.
func restoreNotes(j apiclient.Job) string {
	var notes []string
	if j.Profile != nil {
		notes = append(notes, "profile "+j.Profile.Name)
	}
	if j.AsOf != nil {
		notes = append(notes, "as of "+j.AsOf.Format(time.RFC3339))
	}
	if j.AllowTagMismatch {
		notes = append(notes, "TAG MISMATCH ALLOWED")
	}
	if len(notes) == 0 {
		return ""
	}
	return " (" + strings.Join(notes, ", ") + ")"
}
