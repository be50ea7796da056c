package main

import (
	"github.com/fleetvault/fleetvault/apiclient"

	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/tagmatch"
)

const jobHelp = `

Jobs run in the server given by --server (they need the devices' broker and
the job journal); the command starts the job, shows a live progress bar on a
terminal (counts per state, rate, time left), then the report: counts, and
for every device that did not end restored, its state and reason. --detach
starts the job and returns at once; follow it with fleetvault jobs watch.
--json prints the final job (counts and every device) for scripts.`

func newRestoreCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "restore (--from BACKUP-GROUP --to DEVICE-GROUP | --to-device DEVICE (--piece ID | --from-device OLD)) [--as-of TIME] [--profile NAME] [rollout flags] [--dry-run] [--detach]",
		Short: "Group restore: write matching backed-up settings to every device of a group",
		Long: `restore runs a group restore: every device of the device group --to is
asked for its tag, the tag is matched against the backups of --from, and the
best match is written to the device and verified by hash. A device whose tag
matches nothing, or two backups equally well, is not written; nor is one
whose tag contradicts its registered tag on manufacturer, product or model
(tag-mismatch: a warning is logged and counted on /metrics). Every device's
current settings are saved first, so fleetvault undo JOB puts them back.

--dry-run probes and matches without writing: it prints which device would
get which backup and, for each, what the write would change in its settings
(exit 0 when every device would be restored, 3 otherwise).

A restore profile (fleetvault profile) says which parts of each device's
settings the restore writes, e.g. keeping every device's own /name and
/network/*: --profile NAME, else the profile attached to the backup group
(fleetvault group profile), else whole documents. Under a profile each
device's own document is stored, written and verified by its own hash.

--as-of TIME restores, for each backed-up device, the backup that was current
at TIME (2026-11-24T10:00:00Z, or 2026-11-24 for the end of that day, UTC)
instead of its newest.

A replacement (a broken thermostat swapped for a new one): --to-device NEW
with --piece ID (one backup) or --from-device OLD (OLD's newest backup, as of
--as-of) restores that backup to the one device NEW, profile applied. When
NEW's tag does not match the backup's, nothing is written (the device ends
no-match, saying why) unless --allow-tag-mismatch, which the job and the
device's outcome record.

--continuous keeps the restore standing on the device group: devices added to
the group later, or coming online later, are probed and restored when they
appear (membership is read again every --rescan; presence announcements wake
offline devices), within the rollout's rate, until fleetvault jobs stop JOB.
A device restored is never written again by the job. The job survives a
server restart, and fleetvault jobs list shows its running counts. The
command starts it and returns (as with --detach).

Rollout: --canary N (or --canary-share P) devices go first, then waves of
--wave-size; --rate and --concurrency bound the pace; the job aborts when the
share of failed devices passes --max-failures (after --min-failures) or the
share of no-match devices passes --max-nomatch (after --min-nomatches).
Shares are written 0.1 or 10%.` + jobHelp + exitCodesHelp,
		Example: `  fleetvault restore --from "Backup Group for Reference IoT from model House" --to "Backup Group of Devices"
  fleetvault restore --from models --to homes --dry-run
  fleetvault restore --from models --to new-homes --profile keep-identity
  fleetvault restore --from models --to homes --as-of 2026-11-24T10:00:00Z
  fleetvault restore --from-device home0001-climate --to-device home0001-climate-b
  fleetvault restore --piece 0000000000000042 --to-device home0002-climate --allow-tag-mismatch
  fleetvault restore --from models --to new-homes --continuous --rate 20
  fleetvault restore --from models --to homes --canary 10 --wave-size 200 --rate 50 --max-failures 5% --min-failures 3
  fleetvault restore --from offices --to emea --policy 'equal(manufacturer, model, zone), firmware >= 2.1' --detach --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nj, err := restoreJob(a)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			r := newRemote(cmd, a)
			if a.v.GetBool("dry-run") {
				return runPlan(ctx, a, r, nj, a.v.GetBool("json"))
			}
			// A continuous restore runs until stopped: start it and return.
			return runJob(ctx, a, r, nj, jobOutput{asJSON: a.v.GetBool("json"), detach: a.v.GetBool("detach") || nj.Continuous})
		},
	}
	f := c.Flags()
	f.String("from", "", "the backup group to restore from (required)")
	f.String("to", "", "the device group to restore to (required)")
	f.String("policy", "", "tag match policy, e.g. 'equal(manufacturer, model, zone), firmware >= 2.1' (default: the server's)")
	f.Bool("dry-run", false, "probe and match only: show what would be written, write nothing")
	f.String("profile", "", "the restore profile to apply (default: the one attached to the backup group; see fleetvault profile)")
	f.Bool("no-profile", false, "write whole backed-up documents even when the backup group has a profile")
	f.String("as-of", "", "restore the backups current at this time: 2026-11-24T10:00:00Z, or 2026-11-24 (its end, UTC)")
	f.String("to-device", "", "restore one backup to this one device (a replacement), with --piece or --from-device")
	f.String("piece", "", "with --to-device: the backup to write (an id from fleetvault backups list)")
	f.String("from-device", "", "with --to-device: write this device's newest backup (as of --as-of)")
	f.Bool("allow-tag-mismatch", false, "with --to-device: write even when the device's tag does not match the backup's (recorded)")
	f.Bool("continuous", false, "keep the restore standing: restore devices added to the group, or coming online, later; until fleetvault jobs stop JOB")
	f.Duration("rescan", 0, "with --continuous: how often to read the group's members again (default: the server's, 5s)")
	addRolloutFlags(f, true)
	addJobOutputFlags(f)
	addServerFlags(c, false)
	return c
}

// restoreJob builds a restore request from the flags, refusing bad values.
func restoreJob(a *app) (apiclient.NewJob, error) {
	nj := apiclient.NewJob{Kind: string(grouprestore.KindRestore), Source: a.v.GetString("from"), Target: a.v.GetString("to"), Policy: a.v.GetString("policy"),
		AsOf: a.v.GetString("as-of"), Device: a.v.GetString("to-device"), Piece: a.v.GetString("piece"), FromDevice: a.v.GetString("from-device"),
		AllowTagMismatch: a.v.GetBool("allow-tag-mismatch"), Continuous: a.v.GetBool("continuous")}
	if d := a.v.GetDuration("rescan"); d != 0 {
		if !nj.Continuous {
			return nj, usageError{fmt.Errorf("restore: --rescan goes with --continuous")}
		}
		nj.Rescan = d.String()
	}
	if err := checkRestoreTarget(nj); err != nil {
		return nj, usageError{err}
	}
	if nj.Policy != "" {
		if _, err := tagmatch.ParsePolicy(nj.Policy); err != nil {
			return nj, usageError{fmt.Errorf("restore: --policy: %v", err)}
		}
	}
	nj.Profile, nj.NoProfile = a.v.GetString("profile"), a.v.GetBool("no-profile")
	if nj.Profile != "" && nj.NoProfile {
		return nj, usageError{fmt.Errorf("restore: give --profile NAME or --no-profile, not both")}
	}
	var err error
	nj.Rollout, err = rolloutFromFlags(a)
	return nj, err
}

// addRolloutFlags adds the flags that shape a job's rollout; full adds the
// restore-only ones (waves, canary, thresholds, read-back).
func addRolloutFlags(f *pflag.FlagSet, full bool) {
	f.Int("concurrency", 0, "devices in flight at once (default: the server's, 256)")
	f.Float64("rate", 0, "devices started per second (default: unlimited)")
	f.Duration("timeout", 0, "per-request timeout, e.g. 5s (default: the server's, 5s)")
	f.Int("retries", 0, "retries of a retryable failure (default and 0: the server's, 2)")
	f.Duration("backoff", 0, "first retry delay, doubled each time (default: the server's, 200ms)")
	f.Duration("offline-ttl", 0, "how long an offline device may take to come online (default: none)")
	if !full {
		return
	}
	f.Int("canary", 0, "first wave: this many devices")
	f.String("canary-share", "", "first wave: this share of the devices, e.g. 5% or 0.05")
	f.Int("wave-size", 0, "devices per later wave (default: all the rest at once)")
	f.String("max-failures", "", "abort when this share of the devices done failed, e.g. 10% (default: never)")
	f.Int("min-failures", 0, "...once at least this many failed")
	f.String("max-nomatch", "", "abort when this share of the devices done matched no backup, e.g. 50% (default: never)")
	f.Int("min-nomatches", 0, "...once at least this many matched none")
	f.Bool("read-back", false, "read the settings back after writing and compare their hash too")
}

// rolloutFromFlags reads the rollout flags present (viper holds them).
func rolloutFromFlags(a *app) (apiclient.Rollout, error) {
	v := a.v
	ro := apiclient.Rollout{Concurrency: v.GetInt("concurrency"), Rate: v.GetFloat64("rate"), Canary: v.GetInt("canary"),
		WaveSize: v.GetInt("wave-size"), MinFailures: v.GetInt("min-failures"), MinNoMatches: v.GetInt("min-nomatches"),
		ReadBack: v.GetBool("read-back")}
	for _, n := range []struct {
		name string
		val  int
	}{{"concurrency", ro.Concurrency}, {"canary", ro.Canary}, {"wave-size", ro.WaveSize}, {"min-failures", ro.MinFailures}, {"min-nomatches", ro.MinNoMatches}} {
		if n.val < 0 {
			return ro, usageError{fmt.Errorf("--%s %d: give 0 or more", n.name, n.val)}
		}
	}
	if ro.Rate < 0 {
		return ro, usageError{fmt.Errorf("--rate %g: give 0 (unlimited) or more devices per second", ro.Rate)}
	}
	if v.IsSet("retries") {
		if ro.Retries = v.GetInt("retries"); ro.Retries < 0 {
			return ro, usageError{fmt.Errorf("--retries %d: give 0 or more", ro.Retries)}
		}
	}
	for _, d := range []struct {
		name string
		dst  *string
	}{{"timeout", &ro.Timeout}, {"backoff", &ro.Backoff}, {"offline-ttl", &ro.OfflineTTL}} {
		dur := v.GetDuration(d.name)
		if dur < 0 {
			return ro, usageError{fmt.Errorf("--%s %s: give a positive duration such as 5s", d.name, dur)}
		}
		if dur > 0 {
			*d.dst = dur.String()
		}
	}
	for _, s := range []struct {
		name string
		dst  *float64
	}{{"canary-share", &ro.CanaryShare}, {"max-failures", &ro.MaxFailureShare}, {"max-nomatch", &ro.MaxNoMatchShare}} {
		share, err := parseShare(v.GetString(s.name))
		if err != nil {
			return ro, usageError{fmt.Errorf("--%s: %v", s.name, err)}
		}
		*s.dst = share
	}
	return ro, nil
}

// parseShare reads a share written as a fraction (0.1) or a percentage
// (10%); "" is 0.
func parseShare(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	pct := strings.HasSuffix(s, "%")
	f, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(s, "%")), 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a share: write 0.1 or 10%%", s)
	}
	if pct {
		f /= 100
	}
	if !(f >= 0 && f <= 1) {
		return 0, fmt.Errorf("%q is not a share from 0 to 1 (0%% to 100%%)", s)
	}
	return f, nil
}

// jobOutput is how a job command reports.
type jobOutput struct {
	asJSON bool
	detach bool
}

func addJobOutputFlags(f *pflag.FlagSet) {
	f.Bool("detach", false, "start the job and return at once, printing its id")
	f.Bool("json", false, "print the final job as JSON: state, counts and every device")
}

// runJob starts a job in the server, then follows it to the end (unless
// detached) and reports.
func runJob(ctx context.Context, a *app, r remote, nj apiclient.NewJob, o jobOutput) error {
	j, err := r.client.StartJob(ctx, nj)
	if err != nil {
		if noServer(err) {
			return r.needServer("a "+nj.Kind+" job", err)
		}
		return r.explain(err)
	}
	if o.detach {
		if o.asJSON {
			return writeJSON(a.stdout, j)
		}
		fmt.Fprintf(a.stdout, "started %s\nfollow it with: fleetvault jobs watch %s\n", jobTitle(j), j.ID)
		return nil
	}
	if !o.asJSON {
		fmt.Fprintf(a.stdout, "started %s (%d devices)\n", jobTitle(j), j.Total)
	}
	final, err := followJob(ctx, a, r, j.ID, !o.asJSON)
	if err != nil {
		return err
	}
	return showFinal(a, final, o.asJSON)
}

// runPlan runs a restore's dry run and prints the plan.
func runPlan(ctx context.Context, a *app, r remote, nj apiclient.NewJob, asJSON bool) error {
	p, err := r.client.PlanJob(ctx, nj)
	if err != nil {
		if noServer(err) {
			return r.needServer("a dry run", err)
		}
		return r.explain(err)
	}
	if asJSON {
		if err := writeJSON(a.stdout, p); err != nil {
			return err
		}
	} else if err := renderPlan(a.stdout, p); err != nil {
		return err
	}
	return planExit(p)
}
