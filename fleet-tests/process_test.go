package fleettests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/devicesim"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/scenario"
	"github.com/fleetvault/fleetvault/server"
)

// A helper process is this test binary run again with helperEnv set: it runs
// a Fleetvault server in its own process, so a test can kill it (SIGKILL) and
// start another on the same installation. It speaks lines on stdout, each
// prefixed with helperPrefix, and reads commands from stdin:
//
//	mode "start":  prints "broker-up" once the server runs; on the line "go"
//	               backs up the reference groups, starts a restore and prints
//	               "job <id>"; then serves until killed or stdin ends.
//	mode "backup": as start, but on "go" starts a backup of the device group
//	               Target into the backup group BackupGroup (once_test.go);
//	mode "resume": starts the server (which resumes the journal's jobs),
//	               waits for the job, writes the result as JSON to the out
//	               file, prints "done" and exits.
const (
	helperEnv    = "FLEETTESTS_HELPER"
	helperPrefix = "fleettests-helper: "
)

// helperConfig is what a helper process is told, as JSON in helperEnv.
type helperConfig struct {
	Mode        string               `json:"mode"`
	MBR         string               `json:"mbr"`
	MQTTAddr    string               `json:"mqtt_addr"`
	References  []string             `json:"references"`
	BackupGroup string               `json:"backup_group"`
	Target      string               `json:"target"`
	Rollout     grouprestore.Rollout `json:"rollout"`
	Job         string               `json:"job,omitempty"`
	Out         string               `json:"out,omitempty"`
	// A continuous restore (see continuous_test.go): in mode "start" the
	// line "add ID..." adds devices to the target group; mode "resume-until"
	// waits for Want devices restored, then cancels the job.
	Continuous bool `json:"continuous,omitempty"`
	Want       int  `json:"want,omitempty"`
}

// helperResult is what a resumed job ended with.
type helperResult struct {
	Progress grouprestore.Progress        `json:"progress"`
	Devices  []grouprestore.DeviceOutcome `json:"devices"`
}

func TestHelperProcess(t *testing.T) {
	raw := os.Getenv(helperEnv)
	if raw == "" {
		t.Skip("the server process of TestServerKilledMidJob; runs only when started by it")
	}
	var cfg helperConfig
	err := json.Unmarshal([]byte(raw), &cfg)
	if err == nil {
		err = runHelper(context.Background(), cfg, os.Stdin, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleettests helper:", err)
		os.Exit(2)
	}
	os.Exit(0)
}

func runHelper(ctx context.Context, cfg helperConfig, in io.Reader, out io.Writer) error {
	say := func(format string, args ...any) { fmt.Fprintf(out, helperPrefix+format+"\n", args...) }
	s, err := server.Start(ctx, server.Options{MBR: cfg.MBR, MQTTAddr: cfg.MQTTAddr, CoAPListen: "127.0.0.1:0", Logger: testLogger()})
	if err != nil {
		return err
	}
	defer s.Close()
	switch cfg.Mode {
	case "start":
		say("broker-up")
		sc := bufio.NewScanner(in)
		if !sc.Scan() || sc.Text() != "go" {
			return fmt.Errorf("expected the line go, got %q (%v)", sc.Text(), sc.Err())
		}
		for _, g := range cfg.References {
			j, err := s.Engine.Start(ctx, grouprestore.Spec{Kind: grouprestore.KindBackup, Source: g, Target: cfg.BackupGroup})
			if err != nil {
				return err
			}
			if p, err := j.Wait(ctx); err != nil || p.Counts[grouprestore.BackedUp] != p.Total {
				return fmt.Errorf("backup of %s: %v %v", g, p.Counts, err)
			}
		}
		j, err := s.Engine.Start(ctx, grouprestore.Spec{Kind: grouprestore.KindRestore, Source: cfg.BackupGroup, Target: cfg.Target, Rollout: cfg.Rollout,
			Continuous: cfg.Continuous, Rescan: 200 * time.Millisecond})
		if err != nil {
			return err
		}
		say("job %s", j.ID())
		return helperServe(s, cfg, sc, say) // serve until killed, or the test ends
	case "resume-until":
		return helperResumeUntil(ctx, s, cfg, say)
	case "backup":
		say("broker-up")
		sc := bufio.NewScanner(in)
		if !sc.Scan() || sc.Text() != "go" {
			return fmt.Errorf("expected the line go, got %q (%v)", sc.Text(), sc.Err())
		}
		j, err := s.Engine.Start(ctx, grouprestore.Spec{Kind: grouprestore.KindBackup, Source: cfg.Target, Target: cfg.BackupGroup, Rollout: cfg.Rollout})
		if err != nil {
			return err
		}
		say("job %s", j.ID())
		_, err = io.Copy(io.Discard, in)
		return err
	case "resume":
		j, err := s.Engine.Job(cfg.Job)
		if err != nil {
			return err
		}
		p, err := j.Wait(ctx)
		if err != nil {
			return err
		}
		res := helperResult{Progress: p, Devices: j.Devices()}
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		if err := os.WriteFile(cfg.Out, b, 0o600); err != nil {
			return err
		}
		say("done")
		return nil
	}
	return fmt.Errorf("unknown helper mode %q", cfg.Mode)
}

// helper is a running helper process.
type helper struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *lockedBuffer
	exited chan error
}

func startHelper(t *testing.T, cfg helperConfig) *helper {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(b))
	h := &helper{t: t, cmd: cmd, lines: make(chan string, 16), stderr: &lockedBuffer{}, exited: make(chan error, 1)}
	cmd.Stderr = h.stderr
	if h.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper process: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if l, ok := strings.CutPrefix(sc.Text(), helperPrefix); ok {
				h.lines <- l
			}
		}
		close(h.lines)
		h.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		h.stdin.Close()
		if t.Failed() {
			t.Logf("helper %s stderr:\n%s", cfg.Mode, h.stderr.String())
		}
	})
	return h
}

// expect waits for the helper's next line, which must start with prefix.
func (h *helper) expect(ctx context.Context, prefix string) string {
	h.t.Helper()
	select {
	case l, ok := <-h.lines:
		if !ok {
			h.t.Fatalf("helper exited (%v) before saying %q; stderr:\n%s", <-h.exited, prefix, h.stderr.String())
		}
		if !strings.HasPrefix(l, prefix) {
			h.t.Fatalf("helper said %q, want %q", l, prefix)
		}
		return strings.TrimSpace(strings.TrimPrefix(l, prefix))
	case <-ctx.Done():
		h.t.Fatalf("helper did not say %q: %v; stderr:\n%s", prefix, ctx.Err(), h.stderr.String())
	}
	return ""
}

// kill sends SIGKILL and waits for the process to end.
func (h *helper) kill() {
	h.t.Helper()
	if err := h.cmd.Process.Kill(); err != nil {
		h.t.Fatalf("kill helper: %v", err)
	}
	for range h.lines {
	}
	if err := <-h.exited; err == nil {
		h.t.Fatal("the killed helper exited cleanly")
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// freeAddr returns a loopback address with a port free now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestServerKilledMidJob kills the server process (SIGKILL) in the middle of
// a slow restore, starts another on the same installation and broker port,
// and checks that the resumed job ends done, every device with exactly one
// final outcome, none sent two different settings, nothing reported
// restored that was not verified; then that an undo, run by a third server,
// puts every device back to its settings from before the job. The simulated
// fleet lives in the test process and reconnects to each new broker by itself.
func TestServerKilledMidJob(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	kw := newKillWorld(t, ctx, "testdata/crash.yaml")
	fleet, devs, dir, addr, mbr := kw.fleet, kw.devs, kw.dir, kw.addr, kw.mbr

	w := &scenario.World{Fleet: fleet, Devices: devs, Dir: dir, BackupGroup: scenario.DefaultBackupGroup}
	cfg := helperConfig{Mode: "start", MBR: mbr, MQTTAddr: addr, References: w.ReferenceGroups(), BackupGroup: w.BackupGroup, Target: "homes",
		Rollout: grouprestore.Rollout{Rate: 20, Concurrency: 16, Timeout: time.Second, Retries: 3, OfflineTTL: 30 * time.Second}}
	first := startHelper(t, cfg)
	first.expect(ctx, "broker-up")
	if err := fleet.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fleet.WaitOnline(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(first.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	pre := map[string]string{} // factory settings, before the restore
	for _, d := range devs {
		pre[d.ID] = truth{f: fleet}.Holds(d.ID)
	}
	job := first.expect(ctx, "job ")
	expect := w.Expect("homes")
	written := func() int {
		n := 0
		for id := range expect {
			for _, r := range fleet.Device(id).Log() {
				if r.Job == job && r.Applied {
					n++
					break
				}
			}
		}
		return n
	}
	eventually(t, ctx, time.Minute, "some devices to be restored", func() bool { return written() >= 20 })
	first.kill()
	before := written()
	if before >= len(expect) {
		t.Fatalf("the job wrote all %d devices before the kill; slow it down", before)
	}
	t.Logf("killed the server with %d of %d devices written", before, len(expect))

	out := dir + "/result.json"
	cfg.Mode, cfg.Job, cfg.Out = "resume", job, out
	second := startHelper(t, cfg)
	second.expect(ctx, "done")
	res := readResult(t, out)
	t.Logf("resumed job %s: %s, %v", job, res.Progress.State, res.Progress.Counts)
	if res.Progress.State != grouprestore.JobDone {
		t.Errorf("resumed job ended %s (%s), want done", res.Progress.State, res.Progress.Reason)
	}
	checkOneOutcomeEach(t, res.Devices, expect)
	want := map[string]grouprestore.State{}
	for id := range expect {
		want[id] = grouprestore.Restored
	}
	checkStates(t, res.Progress, res.Devices, want)
	if ms := scenario.Check(job, res.Devices, expect, w.Truth()); len(ms) > 0 {
		t.Errorf("%d ground-truth mismatches after the crash; first ones:\n%s", len(ms), lines(ms[:min(10, len(ms))]))
	}
	checkReferencesUntouched(t, w)
	rewritten := 0
	for id := range expect {
		if len(truth{f: fleet}.writes(id, job)) > 1 {
			rewritten++
		}
	}
	t.Logf("%d devices written before the kill, %d written again (the same settings) after it", before, rewritten)

	// The snapshots taken on both sides of the crash undo the whole job:
	// a third server, in this process, on the same installation and port.
	s, err := server.Start(ctx, server.Options{MBR: mbr, MQTTAddr: addr, CoAPListen: "127.0.0.1:0", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	undoExpect := map[string]scenario.Expectation{}
	for id := range expect {
		undoExpect[id] = scenario.Expectation{Device: id, Want: pre[id], From: id + "'s snapshot", State: grouprestore.Restored}
	}
	uj, up, uwin := run(t, ctx, s.Engine, grouprestore.Spec{Kind: grouprestore.KindUndo, Source: job,
		Rollout: grouprestore.Rollout{Timeout: time.Second, Retries: 3, OfflineTTL: 30 * time.Second}})
	checkStates(t, up, uj.Devices(), want)
	if ms := scenario.Check(uj.ID(), uj.Devices(), undoExpect, truth{fleet, uwin}); len(ms) > 0 {
		t.Errorf("%d ground-truth mismatches after the undo; first ones:\n%s", len(ms), lines(ms[:min(10, len(ms))]))
	}
}

// provisionInstallation creates an installation in dir with the devices
// provisioned, and returns its MBR's path.
func provisionInstallation(t *testing.T, ctx context.Context, dir string, devs []devicesim.DeviceInfo) string {
	t.Helper()
	mbr, err := catalog.Init(dir, catalog.InitOptions{Server: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := catalog.Open(mbr, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = scenario.Provision(ctx, c, devs)
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	return mbr
}

// checkOneOutcomeEach checks every target device appears exactly once in a
// job's outcomes, in a final state.
func checkOneOutcomeEach(t *testing.T, outs []grouprestore.DeviceOutcome, expect map[string]scenario.Expectation) {
	t.Helper()
	seen := map[string]int{}
	var errs []error
	for _, o := range outs {
		seen[o.Device]++
		if !o.State.Final() {
			errs = append(errs, fmt.Errorf("%s ended %s, not a final state", o.Device, o.State))
		}
	}
	for id := range expect {
		if seen[id] != 1 {
			errs = append(errs, fmt.Errorf("%s has %d outcomes", id, seen[id]))
		}
	}
	if len(outs) != len(expect) {
		errs = append(errs, fmt.Errorf("%d outcomes for %d devices", len(outs), len(expect)))
	}
	if err := errors.Join(errs...); err != nil {
		t.Error(err)
	}
}

// killWorld is what the kill -9 tests share: a simulated fleet of a fleet
// file, living in the test process and dialling a broker address that each
// server process they start serves in turn, and its installation in dir.
type killWorld struct {
	fleet *devicesim.Fleet
	devs  []devicesim.DeviceInfo
	dir   string
	addr  string
	mbr   string
}

func newKillWorld(t *testing.T, ctx context.Context, fleetFile string) killWorld {
	t.Helper()
	w := killWorld{dir: t.TempDir(), addr: freeAddr(t)}
	fleet, err := devicesim.New(loadFleet(t, fleetFile), devicesim.Options{BrokerURL: "mqtt://" + w.addr, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fleet.Close() })
	w.fleet, w.devs = fleet, fleet.Devices()
	w.mbr = provisionInstallation(t, ctx, w.dir, w.devs)
	return w
}
