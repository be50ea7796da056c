package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetvault/fleetvault/catalog/repokey"
	"github.com/fleetvault/fleetvault/devicesim"
	"github.com/fleetvault/fleetvault/examples/fleets"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/scenario"
	"github.com/fleetvault/fleetvault/settingsdoc"
	"github.com/fleetvault/fleetvault/tagmatch"
)

type demoOptions struct {
	fleet      string
	homes      int
	asJSON     bool
	dir        string
	timeout    time.Duration
	offlineTTL time.Duration
	policy     string
}

func newDemoCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "demo [--homes N] [--json]",
		Short: "Run the builder's group restore on a simulated fleet, everything embedded",
		Long: `demo runs the article's builder scenario with nothing installed: it starts an
embedded MQTT broker and catalog in a temporary directory, a simulated model
house with North and South variants of climate control, lighting and security
devices, and new homes of mixed zones (with a few unknown devices and a few
that come online late or never). It backs up the model house, shows the
dry-run plan, runs the group restore with a progress bar, prints the report,
and checks every device's ground truth: what it was sent and what it holds.
A fleet with a restore_profile (the shipped ones keep each device's name and
network) restores under it, and the ground truth also checks that every
restored device kept its own kept parts (every home its own device names).
The parts' own logs are shown only with --log-level; --json prints the report
with every device's outcome (outcomes).

Exit status 0 when every device's ground truth agrees with the report, 1 otherwise.`,
		Example: `  fleetvault demo
  fleetvault demo --homes 200 --json
  fleetvault demo --fleet offices --policy 'equal(manufacturer, product, model, region, zone)'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := demoOptions{fleet: a.v.GetString("fleet"), homes: a.v.GetInt("homes"), asJSON: a.v.GetBool("json"),
				dir: a.v.GetString("dir"), timeout: a.v.GetDuration("timeout"), offlineTTL: a.v.GetDuration("offline-ttl"),
				policy: a.v.GetString("policy")}
			if o.homes < 1 {
				return usageError{fmt.Errorf("--homes %d: give at least 1", o.homes)}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			if !cmd.Flags().Changed("log-level") && os.Getenv("FLEETVAULT_LOG_LEVEL") == "" {
				// The demo tells its own story; the parts' info logs would drown it.
				a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			}
			return runDemo(ctx, a, o)
		},
	}
	f := c.Flags()
	f.String("fleet", "model-house", "a shipped fleet ("+strings.Join(fleets.Names(), ", ")+") or a fleet file")
	f.Int("homes", 1000, "how many new homes (sites of every target group)")
	f.Bool("json", false, "print the report as JSON")
	f.String("dir", "", "keep the installation in this directory (default: a temporary one, removed); it is encrypted with the passphrase from --password-file, FLEETVAULT_PASSWORD_FILE, FLEETVAULT_PASSWORD or a prompt")
	f.Duration("timeout", 3*time.Second, "per-request timeout")
	f.Duration("offline-ttl", 20*time.Second, "how long an offline device may take to come online")
	f.String("policy", "", "match policy, e.g. 'equal(manufacturer, product, model, region, zone)' (default: manufacturer, product, model, zone)")
	return c
}

// demoReport is the demo's JSON report.
type demoReport struct {
	Fleet        string                       `json:"fleet"`
	Homes        int                          `json:"homes"`
	Devices      int                          `json:"devices"`
	Reference    int                          `json:"reference_devices"`
	BackupGroup  string                       `json:"backup_group"`
	Plan         map[grouprestore.State]int   `json:"plan"`
	Jobs         []string                     `json:"jobs"`
	Counts       map[grouprestore.State]int   `json:"counts"`
	Seconds      float64                      `json:"seconds"`
	DevicesPerS  float64                      `json:"devices_per_s"`
	Seconds99    float64                      `json:"seconds_to_99_percent"`
	Mismatches   int                          `json:"ground_truth_mismatches"`
	Outcomes     []grouprestore.DeviceOutcome `json:"outcomes"`
	MismatchList []scenario.Mismatch          `json:"mismatch_examples,omitempty"`

	Profile     *settingsdoc.Profile `json:"profile,omitempty"`      // the restore profile applied
	KeptChecked int                  `json:"kept_checked,omitempty"` // restored devices whose kept parts the ground truth checked
}

func loadFleet(name string) (*devicesim.Spec, error) {
	if _, err := os.Stat(name); err == nil {
		return devicesim.Load(name)
	}
	b, err := fleets.Read(name)
	if err != nil {
		return nil, fmt.Errorf("%w (or give the path of a fleet file)", err)
	}
	return devicesim.Parse(name+".yaml", b)
}

func runDemo(ctx context.Context, a *app, o demoOptions) error {
	spec, err := loadFleet(o.fleet)
	if err != nil {
		return err
	}
	scenario.ScaleTargets(spec, o.homes)
	policy, err := tagmatch.ParsePolicy(o.policy)
	if err != nil {
		return usageError{fmt.Errorf("--policy: %w", err)}
	}
	out := a.stdout
	if o.asJSON {
		out = io.Discard
	}
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }

	say("Starting Fleetvault, all embedded: catalog, MQTT broker, %d simulated new homes...", o.homes)
	key, keyDir, err := demoKey(a, o.dir)
	if err != nil {
		return err
	}
	w, err := scenario.Start(ctx, scenario.Options{Fleet: spec, Dir: o.dir, Logger: a.log, Key: key, KeyDir: keyDir})
	if err != nil {
		return err
	}
	defer w.Close()
	st := w.Fleet.Stats()
	refs := len(w.Devices) - countTargets(w)
	say("  installation %s, broker %s", w.Dir, w.Server.BrokerURL())
	say("  %d devices: %d in the model house, %d in new homes (%d online now, %d will come online later, %d never)",
		len(w.Devices), refs, len(w.Devices)-refs, st.Online, st.Waiting, st.Offline)

	say("\nBacking up the model house (%s) into %q...", strings.Join(w.ReferenceGroups(), ", "), w.BackupGroup)
	if _, err := w.BackupReferences(ctx); err != nil {
		return err
	}
	say("  %d reference devices backed up with their tags", refs)
	prof, err := demoProfile(w, spec.RestoreProfile, say)
	if err != nil {
		return err
	}

	rep := demoReport{Profile: prof, Fleet: spec.Name, Homes: o.homes, Devices: len(w.Devices) - refs, Reference: refs, BackupGroup: w.BackupGroup,
		Plan: map[grouprestore.State]int{}, Counts: map[grouprestore.State]int{}}
	rollout := grouprestore.Rollout{Timeout: o.timeout, Retries: 1, OfflineTTL: o.offlineTTL}
	for _, target := range w.TargetGroups() {
		spec := grouprestore.Spec{Kind: grouprestore.KindRestore, Source: w.BackupGroup, Target: target, Policy: o.policy, Rollout: rollout, Profile: prof}
		say("\nDry run: restore from %q to %q", w.BackupGroup, target)
		plan, err := w.Server.Engine.Plan(ctx, grouprestore.Spec{Kind: spec.Kind, Source: spec.Source, Target: spec.Target, Policy: o.policy, Rollout: grouprestore.Rollout{Timeout: o.timeout}, Profile: prof})
		if err != nil {
			return err
		}
		planCounts := map[grouprestore.State]int{}
		for _, pe := range plan {
			planCounts[pe.State]++
			rep.Plan[pe.State]++
		}
		say("  %s", countsLine(planCounts))

		say("\nGroup restore from %q to %q:", w.BackupGroup, target)
		before := w.SettingsOf(target)
		j, err := w.Server.Engine.Start(ctx, spec)
		if err != nil {
			return err
		}
		p, err := follow(ctx, j, out)
		if err != nil {
			return fmt.Errorf("demo interrupted; job %s stopped where it stood: %w", j.ID(), err)
		}
		rep.Jobs = append(rep.Jobs, j.ID())
		rep.Outcomes = append(rep.Outcomes, j.Devices()...)
		for s, n := range p.Counts {
			rep.Counts[s] += n
		}
		rep.Seconds += p.Elapsed.Seconds()
		rep.Seconds99 += seconds99(p, j.Devices())
		printOutcomes(out, p, j.Devices())
		ms, kept, err := demoCheck(w, j, target, policy.EqualKeys(), prof, before)
		if err != nil {
			return err
		}
		rep.KeptChecked += kept
		rep.Mismatches += len(ms)
		rep.MismatchList = append(rep.MismatchList, ms[:min(10, len(ms))]...)
	}
	if rep.Seconds > 0 {
		rep.DevicesPerS = float64(rep.Devices) / rep.Seconds
	}
	say("\nReport: %s in %.1fs (%.0f devices/s)", countsLine(rep.Counts), rep.Seconds, rep.DevicesPerS)
	if rep.Seconds99 > 0 && rep.Seconds99 < 0.8*rep.Seconds {
		say("  99%% of devices were done after %.1fs (%.0f devices/s); the rest waited for devices to come online", rep.Seconds99, 0.99*float64(rep.Devices)/rep.Seconds99)
	}
	if rep.Mismatches == 0 {
		say("Ground truth: all %d devices hold exactly what the report says; none was written settings its tag did not match.", rep.Devices)
		if prof != nil {
			say("  Profile %s: each of the %d restored devices kept its own %s (every home kept its own device names).", prof.Name, rep.KeptChecked, strings.Join(prof.Keep, ", "))
		}
	} else {
		say("Ground truth: %d MISMATCHES:", rep.Mismatches)
		for _, m := range rep.MismatchList {
			say("  %s", m)
		}
	}
	if o.asJSON {
		if err := writeJSON(a.stdout, rep); err != nil {
			return err
		}
	}
	if rep.Mismatches > 0 {
		return exitCodeError{exitError, fmt.Errorf("ground truth check failed: %d devices disagree with the report", rep.Mismatches)}
	}
	return nil
}

// seconds99 is how long after its start a job had 99% of its devices final.
func seconds99(p grouprestore.Progress, devs []grouprestore.DeviceOutcome) float64 {
	var ts []int64
	for _, d := range devs {
		if d.State.Final() && d.Time > 0 {
			ts = append(ts, d.Time)
		}
	}
	if len(ts) == 0 {
		return 0
	}
	slices.Sort(ts)
	t := ts[(len(ts)*99+99)/100-1]
	return time.UnixMilli(t).Sub(p.Started).Seconds()
}

func countTargets(w *scenario.World) int {
	n := 0
	for _, d := range w.Devices {
		if !d.Reference {
			n++
		}
	}
	return n
}

// demoKey encrypts the demo's installation as init would: a temporary one
// with a random repository key that goes with it; one kept in dir with a
// key file for the passphrase, so it opens later.
func demoKey(a *app, dir string) (*repokey.Key, string, error) {
	if dir == "" {
		k, err := repokey.New()
		return k, "", err
	}
	pass, err := passphrase(a, "the demo installation in "+dir)
	if err != nil {
		return nil, "", err
	}
	keyDir := filepath.Join(dir, "keys")
	k, _, err := repokey.Create(keyDir, pass, kdfParams(a))
	return k, keyDir, err
}
