package main

import (
	"github.com/fleetvault/fleetvault/apiclient"

	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/grouprestore"
)

// The end-to-end tests run the fleetvault binary as a person would: init,
// serve, sim, device import, backup, restore, jobs, a server killed mid-job.

var (
	e2eDir      string // holds the binary
	e2eBuild    sync.Once
	e2eBinary   string
	e2eBuildErr error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fleetvault-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	e2eDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// e2eFleetvault builds the binary once, on first use, so unit-test runs that
// skip the end-to-end tests do not pay for the build.
func e2eFleetvault(t *testing.T) string {
	t.Helper()
	e2eBuild.Do(func() {
		e2eBinary = filepath.Join(e2eDir, "fleetvault")
		out, err := exec.Command("go", "build", "-o", e2eBinary, ".").CombinedOutput()
		if err != nil {
			e2eBuildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if e2eBuildErr != nil {
		t.Fatal(e2eBuildErr)
	}
	return e2eBinary
}

// e2eBuffer collects a subprocess's output safely.
type e2eBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *e2eBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *e2eBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// e2eWorld is an installation, its server and a simulated fleet.
type e2eWorld struct {
	t         *testing.T
	bin       string
	dir       string
	mbr       string
	token     string
	httpAddr  string
	mqttAddr  string
	serve     *exec.Cmd
	serveLogs []*e2eBuffer
}

func e2eFreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// env is the environment of every fleetvault subprocess: no stray
// FLEETVAULT_* settings from the caller.
func (w *e2eWorld) env(token string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FLEETVAULT_") {
			env = append(env, kv)
		}
	}
	return append(env, "FLEETVAULT_SERVER_URL=http://"+w.httpAddr, "FLEETVAULT_SERVER_TOKEN="+token, "FLEETVAULT_LOG_LEVEL=warn",
		"FLEETVAULT_PASSWORD="+e2ePassphrase) // the installation is encrypted, as init makes it by default
}

// e2ePassphrase is the passphrase of the end-to-end installations.
const e2ePassphrase = "e2e passphrase, not a secret"

// newE2EWorld makes an installation, starts its server and the fleet of
// testdata/e2e-fleet.yaml, and imports its 22 devices.
func newE2EWorld(t *testing.T) *e2eWorld {
	return newE2EWorldOf(t, "e2e-fleet.yaml", 22)
}

// start runs a long-lived subprocess, killed when the test ends.
func (w *e2eWorld) start(args ...string) (*exec.Cmd, *e2eBuffer) {
	out := &e2eBuffer{}
	cmd := exec.Command(w.bin, args...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = w.dir, w.env(w.token), out, out
	if err := cmd.Start(); err != nil {
		w.t.Fatalf("start %v: %v", args, err)
	}
	w.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd, out
}

// fv runs one command to its end and returns its exit status and output.
func (w *e2eWorld) fv(token string, args ...string) (int, string, string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, w.bin, args...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = w.dir, w.env(token), &out, &errOut
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		w.t.Fatalf("fleetvault %v: %v\n%s", args, err, errOut.String())
	}
	return code, out.String(), errOut.String()
}

// must runs a command that must exit with want.
func (w *e2eWorld) must(want int, args ...string) string {
	w.t.Helper()
	code, out, errOut := w.fv(w.token, args...)
	if code != want {
		w.t.Fatalf("fleetvault %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s\nserver log (tail):\n%s",
			strings.Join(args, " "), code, want, out, errOut, w.serverLogTail())
	}
	return out
}

func (w *e2eWorld) serverLogTail() string {
	var all string
	for _, l := range w.serveLogs {
		all += l.String()
	}
	if len(all) > 4000 {
		all = all[len(all)-4000:]
	}
	return all
}

// startServer runs fleetvault serve and waits until its API answers.
func (w *e2eWorld) startServer() {
	w.t.Helper()
	cmd, out := w.start("serve", "--mbr", w.mbr, "--http", w.httpAddr, "--mqtt", w.mqttAddr)
	w.serve = cmd
	w.serveLogs = append(w.serveLogs, out)
	e2eWaitFor(w.t, 30*time.Second, "the server's /healthz", func() bool {
		resp, err := http.Get("http://" + w.httpAddr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// e2eWaitFor polls cond until it holds or the deadline passes.
func e2eWaitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a wait for an event
	}
}

var e2eTokenLine = regexp.MustCompile(`admin API token[^:]*: (\S+)`)

// newE2EInstallation runs fleetvault init in a fresh directory (initArgs
// are more of its arguments), keeping the admin token it prints; nothing
// runs yet.
func newE2EInstallation(t *testing.T, initArgs ...string) *e2eWorld {
	t.Helper()
	w := &e2eWorld{t: t, bin: e2eFleetvault(t), dir: t.TempDir(), httpAddr: e2eFreeAddr(t), mqttAddr: e2eFreeAddr(t)}
	out := w.must(exitOK, append([]string{"init", "--dir", "inst"}, initArgs...)...)
	m := e2eTokenLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("fleetvault init printed no admin token:\n%s", out)
	}
	w.token, w.mbr = m[1], filepath.Join(w.dir, "inst", "fleetvault.mbr")
	return w
}

// newE2EWorldOf makes an installation, starts its server and the fleet of
// testdata/fleetFile, and imports its devices devices. initArgs are more
// arguments of fleetvault init.
func newE2EWorldOf(t *testing.T, fleetFile string, devices int, initArgs ...string) *e2eWorld {
	w := newE2EInstallation(t, initArgs...)
	w.startServer()

	fleet, err := filepath.Abs(filepath.Join("testdata", fleetFile))
	if err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(w.dir, "devices.yaml")
	_, simOut := w.start("sim", "--fleet", fleet, "--broker", "mqtt://"+w.mqttAddr, "--devices-out", list)
	e2eWaitFor(t, 30*time.Second, "the simulator's device list", func() bool {
		_, err := os.Stat(list)
		return err == nil
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("simulator log (tail):\n%s", e2eTail(simOut.String(), 3000))
		}
	})
	if out := w.must(exitOK, "device", "import", list); !strings.Contains(out, fmt.Sprintf("added %d device(s)", devices)) {
		t.Fatalf("device import:\n%s", out)
	}
	return w
}

func e2eTail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// job reads a job as JSON with fleetvault jobs show.
func (w *e2eWorld) job(id string) apiclient.Job {
	w.t.Helper()
	_, out, errOut := w.fv(w.token, "jobs", "show", id, "--json")
	var j apiclient.Job
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		w.t.Fatalf("jobs show %s --json: %v\n%s%s", id, err, out, errOut)
	}
	return j
}

// startDetached starts a job with --detach --json and returns its id.
func (w *e2eWorld) startDetached(args ...string) string {
	w.t.Helper()
	out := w.must(exitOK, append(args, "--detach", "--json")...)
	var j apiclient.Job
	if err := json.Unmarshal([]byte(out), &j); err != nil || j.ID == "" {
		w.t.Fatalf("%v --detach --json: %v\n%s", args, err, out)
	}
	return j.ID
}

// Rollout flags every test job uses: late-connecting devices are waited for.
var e2eRollout = []string{"--timeout", "2s", "--offline-ttl", "20s"}

func TestE2E(t *testing.T) {
	// About 15s (build included), so it runs under -short too, as make test does.
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("end-to-end: needs the go tool to build the binary")
	}
	w := newE2EWorld(t)

	t.Run("a request without a token is refused", func(t *testing.T) {
		code, _, errOut := w.fv("", "device", "add", "intruder")
		if code != exitError || !strings.Contains(errOut, "--token") {
			t.Errorf("exit %d, stderr %q; want 1 and a hint to give --token", code, errOut)
		}
		if out := w.must(exitOK, "device", "list"); strings.Contains(out, "intruder") {
			t.Errorf("the refused device was added:\n%s", out)
		}
	})

	for _, g := range []string{"model-house-north", "model-house-south"} {
		out := w.must(exitOK, append([]string{"backup", "--group", g, "--into", "models"}, e2eRollout...)...)
		if !strings.Contains(out, "2 backed-up") {
			t.Fatalf("backup %s:\n%s", g, out)
		}
	}
	if out := w.must(exitOK, "backups", "list", "--group", "models"); !strings.Contains(out, "4 backup(s)") {
		t.Fatalf("backups list:\n%s", out)
	}

	t.Run("restore watched to the end", func(t *testing.T) {
		id := w.startDetached(append([]string{"restore", "--from", "models", "--to", "new-homes"}, e2eRollout...)...)
		out := w.must(exitOK, "jobs", "watch", id)
		if !strings.Contains(out, "16 restored") {
			t.Errorf("jobs watch:\n%s", out)
		}
	})

	t.Run("drift, a replacement with a tag mismatch, remediation", func(t *testing.T) {
		if out := w.must(exitOK, "drift", "--group", "new-homes"); !strings.Contains(out, "16 in-sync") {
			t.Errorf("drift after the restore:\n%s", out)
		}
		w.must(exitIncomplete, "restore", "--to-device", "home01-climate", "--from-device", "model-north-lighting")
		out := w.must(exitOK, "restore", "--to-device", "home01-climate", "--from-device", "model-north-lighting", "--allow-tag-mismatch")
		if !strings.Contains(out, "TAG MISMATCH ALLOWED") {
			t.Errorf("replacement with a mismatch:\n%s", out)
		}
		if audit := w.must(exitOK, "audit", "--json"); !strings.Contains(audit, `"allow_tag_mismatch"`) || !strings.Contains(audit, `"device=home01-climate"`) {
			t.Errorf("the audit log does not record the allowed tag mismatch:\n%s", audit)
		}
		out = w.must(exitIncomplete, "drift", "--group", "new-homes", "--against", "models")
		if !strings.Contains(out, "1 drifted") || !strings.Contains(out, "home01-climate") || !strings.Contains(out, "/color_temp_k") {
			t.Errorf("drift against models:\n%s", out)
		}
		if out := w.must(exitOK, "drift", "--group", "new-homes", "--against", "models", "--remediate"); !strings.Contains(out, "remediation") {
			t.Errorf("drift --remediate:\n%s", out)
		}
		w.must(exitOK, "drift", "--group", "new-homes", "--against", "models")
	})

	t.Run("restore with a device nobody backed up exits 3", func(t *testing.T) {
		out := w.must(exitIncomplete, append([]string{"restore", "--from", "models", "--to", "odd-homes"}, e2eRollout...)...)
		if !strings.Contains(out, "1 restored, 1 no-match") || !strings.Contains(out, "odd01-hub-x9") {
			t.Errorf("restore:\n%s", out)
		}
	})

	t.Run("unknown backup group suggests the closest", func(t *testing.T) {
		code, _, errOut := w.fv(w.token, "restore", "--from", "modles", "--to", "new-homes")
		if code != exitError || !strings.Contains(errOut, `did you mean "models"?`) {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		id := w.startDetached(append([]string{"restore", "--from", "models", "--to", "new-homes", "--rate", "2"}, e2eRollout...)...)
		out := w.must(exitOK, "jobs", "cancel", id)
		if !strings.Contains(out, "cancelled") {
			t.Errorf("jobs cancel:\n%s", out)
		}
		j := w.job(id)
		if j.State != grouprestore.JobCancelled || j.Progress.Counts[grouprestore.Skipped] == 0 {
			t.Errorf("cancelled job: state %s, counts %v", j.State, j.Progress.Counts)
		}
		e2eCheckFinal(t, j)
	})

	t.Run("server killed mid-job resumes it", func(t *testing.T) {
		id := w.startDetached(append([]string{"restore", "--from", "models", "--to", "new-homes", "--rate", "4"}, e2eRollout...)...)
		var before apiclient.Job
		e2eWaitFor(t, 30*time.Second, "the job to restore a few devices", func() bool {
			before = w.job(id)
			return before.Progress != nil && before.Progress.Counts[grouprestore.Restored] >= 2
		})
		if before.State.Final() {
			t.Fatalf("the job ended before the server could be killed (%v); slow it down", before.Progress.Counts)
		}
		if err := w.serve.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = w.serve.Wait()
		if code, _, errOut := w.fv(w.token, "jobs", "show", id); code != exitError || !strings.Contains(errOut, "no Fleetvault server answers") {
			t.Fatalf("with the server killed, jobs show: exit %d, stderr %q", code, errOut)
		}
		w.startServer()
		var j apiclient.Job
		e2eWaitFor(t, 60*time.Second, "the resumed job to end", func() bool {
			j = w.job(id)
			return j.State.Final()
		})
		if j.State != grouprestore.JobDone || j.Progress.Counts[grouprestore.Restored] != 16 {
			t.Errorf("resumed job: state %s (%s), counts %v; want done with 16 restored", j.State, j.Reason, j.Progress.Counts)
		}
		e2eCheckFinal(t, j)
	})
}

// e2eCheckFinal checks that every device of an ended job has one final state.
func e2eCheckFinal(t *testing.T, j apiclient.Job) {
	t.Helper()
	if len(j.Devices) != j.Total {
		t.Errorf("job %s lists %d devices of %d", j.ID, len(j.Devices), j.Total)
	}
	seen := map[string]bool{}
	for _, d := range j.Devices {
		if !d.State.Final() || seen[d.Device] {
			t.Errorf("job %s: device %s in state %s (seen before: %v)", j.ID, d.Device, d.State, seen[d.Device])
		}
		seen[d.Device] = true
	}
}
