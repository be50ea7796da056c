package fleettests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/scenario"
	"github.com/fleetvault/fleetvault/server"
)

// helperServe answers a start helper's later lines: "add ID..." adds devices
// to the target group and says "added N".
func helperServe(s *server.Server, cfg helperConfig, sc *bufio.Scanner, say func(string, ...any)) error {
	for sc.Scan() {
		ids, ok := strings.CutPrefix(sc.Text(), "add ")
		if !ok {
			continue
		}
		f := strings.Fields(ids)
		if err := s.Catalog.AddMembers(cfg.Target, f); err != nil {
			return err
		}
		say("added %d", len(f))
	}
	return sc.Err()
}

// helperResumeUntil lets the resumed continuous restore run until it has
// restored cfg.Want devices, cancels it, and writes its result.
func helperResumeUntil(ctx context.Context, s *server.Server, cfg helperConfig, say func(string, ...any)) error {
	j, err := s.Engine.Job(cfg.Job)
	if err != nil {
		return err
	}
	// Every 10 s the helper says on stderr where the job stands, which the
	// test prints if it fails.
	report := time.NewTicker(10 * time.Second)
	defer report.Stop()
	for j.Progress().Counts[grouprestore.Restored] < cfg.Want {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-j.Done():
			return fmt.Errorf("the continuous restore ended by itself: %+v", j.Progress())
		case <-report.C:
			var behind []string
			for _, d := range j.Devices() {
				if d.State != grouprestore.Restored && len(behind) < 10 {
					behind = append(behind, fmt.Sprintf("%s %s: %s", d.Device, d.State, d.Reason))
				}
			}
			fmt.Fprintf(os.Stderr, "resumed job: %v of %d wanted restored; not restored: %s\n", j.Progress().Counts, cfg.Want, strings.Join(behind, "; "))
		case <-time.After(20 * time.Millisecond):
		}
	}
	j.Cancel()
	p, err := j.Wait(ctx)
	if err != nil {
		return err
	}
	b, err := json.Marshal(helperResult{Progress: p, Devices: j.Devices()})
	if err != nil {
		return err
	}
	if err := os.WriteFile(cfg.Out, b, 0o600); err != nil {
		return err
	}
	say("done")
	return nil
}

// TestContinuousRestoreKilled stands a continuous restore on a group of
// homes, some of whose thermostats come online late; adds 100 devices to the
// group while it runs, kills the server (SIGKILL), adds 100 more while it is
// down, and starts another server: the resumed job restores every device,
// late and added ones included, each with one settings document.
func TestContinuousRestoreKilled(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	kw := newKillWorld(t, ctx, "testdata/continuous.yaml")
	fleet, devs, dir, addr, mbr := kw.fleet, kw.devs, kw.dir, kw.addr, kw.mbr
	var homes, later []string
	late := 0
	for _, d := range devs {
		switch d.Group {
		case "homes":
			homes = append(homes, d.ID)
			if d.Faults.LateAfter > 0 {
				late++
			}
		case "later":
			later = append(later, d.ID)
		}
	}
	if late < 20 || len(later) != 200 {
		t.Fatalf("the fleet has %d late homes and %d later devices; want at least 20 and 200", late, len(later))
	}
	w := &scenario.World{Fleet: fleet, Devices: devs, Dir: dir, BackupGroup: scenario.DefaultBackupGroup}
	cfg := helperConfig{Mode: "start", MBR: mbr, MQTTAddr: addr, References: w.ReferenceGroups(), BackupGroup: w.BackupGroup, Target: "homes",
		Continuous: true, Rollout: grouprestore.Rollout{Rate: 200, Concurrency: 32, Timeout: time.Second, Retries: 1}}
	first := startHelper(t, cfg)
	first.expect(ctx, "broker-up")
	if err := fleet.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(first.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	job := first.expect(ctx, "job ")
	applied := func(id string) int {
		n := 0
		for _, r := range fleet.Device(id).Log() {
			if r.Job == job && r.Applied {
				n++
			}
		}
		return n
	}
	written := func(ids []string) int {
		n := 0
		for _, id := range ids {
			if applied(id) > 0 {
				n++
			}
		}
		return n
	}
	eventually(t, ctx, time.Minute, "the homes online to be restored", func() bool { return written(homes) >= len(homes)-late })
	if _, err := io.WriteString(first.stdin, "add "+strings.Join(later[:100], " ")+"\n"); err != nil {
		t.Fatal(err)
	}
	first.expect(ctx, "added 100")
	eventually(t, ctx, time.Minute, "some added devices to be restored", func() bool { return written(later[:100]) >= 20 })
	first.kill()
	t.Logf("killed the server with %d of %d homes and %d of 100 added devices written", written(homes), len(homes), written(later[:100]))

	c, err := catalog.Open(mbr, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddMembers("homes", later[100:]); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	all := append(append([]string(nil), homes...), later...)
	out := dir + "/result.json"
	cfg.Mode, cfg.Job, cfg.Out, cfg.Want = "resume-until", job, out, len(all)
	second := startHelper(t, cfg)
	second.expect(ctx, "done")
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res helperResult
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	t.Logf("resumed continuous job %s: %s, %v", job, res.Progress.State, res.Progress.Counts)
	seen := map[string]int{}
	for _, o := range res.Devices {
		seen[o.Device]++
		if o.State != grouprestore.Restored {
			t.Errorf("%s: %s: %s", o.Device, o.State, o.Reason)
		}
	}
	rewritten := 0
	for _, id := range all {
		if seen[id] != 1 {
			t.Errorf("%s has %d outcomes in the job, want 1", id, seen[id])
		}
		ws := truth{f: fleet}.writes(id, job)
		distinct := map[string]bool{}
		for _, h := range ws {
			distinct[string(h.Sent)] = true
		}
		if len(distinct) != 1 {
			t.Errorf("%s was sent %d different settings", id, len(distinct))
		}
		if len(ws) > 1 {
			rewritten++ // in flight at the kill: the resumed job rewrites its intent
		}
	}
	t.Logf("%d devices restored, %d written again (the same settings) after the kill", len(all), rewritten)
}
