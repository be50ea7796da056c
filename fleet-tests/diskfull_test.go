package fleettests

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/scenario"
)

// diskFullEnv marks the child process of TestFullDiskPausesAndFinishes,
// which runs in a mount namespace of its own.
const diskFullEnv = "FLEETTESTS_DISKFULL_CHILD"

// TestFullDiskPausesAndFinishes is issue 11's finding 6: the installation
// lives on a small tmpfs; while a backup and then a restore run, the disk is
// filled to the last byte. Each job must pause with a job-level error, and
// finish by itself once the space is freed, in the same server (no restart),
// with every device's outcome durable: one backup piece per device, holding
// its settings; every restored device holding what the oracle says.
//
// Mounting needs root: the test re-runs itself in a child process with a
// mount namespace of its own (so the tmpfs never outlives it), and skips
// when not root. make test runs as root.
func TestFullDiskPausesAndFinishes(t *testing.T) {
	if os.Getenv(diskFullEnv) == "" {
		runInMountNamespace(t)
		return
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=24m,mode=0700"); err != nil {
		t.Fatalf("mount a 24 MiB tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	ctx := testContext(t, 3*time.Minute)
	spec := loadFleet(t, "testdata/crash.yaml")
	scenario.ScaleTargets(spec, sites(60, 120))
	w := startWorldIn(t, ctx, spec, filepath.Join(dir, "fleetvault"))
	ro := grouprestore.Rollout{Rate: 40, Concurrency: 16, Timeout: 2 * time.Second, Retries: 2}

	t.Run("backup", func(t *testing.T) {
		j := fillWhileRunning(t, ctx, w, dir, grouprestore.Spec{Kind: grouprestore.KindBackup, Source: "homes", Target: "homes backup", Rollout: ro})
		p := j.Progress()
		n := 0
		for _, d := range w.Devices {
			if d.Group == "homes" {
				n++
			}
		}
		if p.State != grouprestore.JobDone || p.Counts[grouprestore.BackedUp] != n {
			t.Fatalf("backup ended %s (%s): %v, want %d backed-up", p.State, p.Reason, p.Counts, n)
		}
		pieces := map[string]int{}
		ps, err := w.Server.Catalog.Pieces(catalog.Query{Group: "homes backup"})
		if err != nil {
			t.Fatal(err)
		}
		for _, pc := range ps {
			if pc.Job == j.ID() {
				pieces[pc.Client]++
				if h := (truth{f: w.Fleet}).Holds(pc.Client); pc.Ref.String() != h {
					t.Errorf("piece %s of %s holds %.12s, the device %.12s", pc.ID, pc.Client, pc.Ref.String(), h)
				}
			}
		}
		for _, o := range j.Devices() {
			if pieces[o.Device] != 1 || o.Piece == "" {
				t.Errorf("%s: %d pieces from the job, outcome %s", o.Device, pieces[o.Device], o)
			}
		}
	})
	t.Run("restore", func(t *testing.T) {
		expect := w.Expect("homes")
		win := window{from: time.Now()}
		j := fillWhileRunning(t, ctx, w, dir, restoreSpec(w, "homes", ro))
		win.to = time.Now()
		p := j.Progress()
		if p.State != grouprestore.JobDone {
			t.Errorf("restore ended %s (%s)", p.State, p.Reason)
		}
		checkStates(t, p, j.Devices(), wantFromOracle(w, expect))
		checkTruth(t, w, j, win, expect)
	})
}

// fillWhileRunning starts a job, fills the disk at dir once the job has
// begun, waits for the job's storage error, frees the space and waits for
// the job to end.
func fillWhileRunning(t *testing.T, ctx context.Context, w *scenario.World, dir string, spec grouprestore.Spec) *grouprestore.Job {
	t.Helper()
	e := w.Server.Engine
	j, err := e.Start(ctx, spec)
	if err != nil {
		t.Fatalf("start %s: %v", spec.Kind, err)
	}
	eventually(t, ctx, time.Minute, "the job to begin", func() bool { return j.Progress().Done > 0 })
	filler := filepath.Join(dir, "filler")
	fill(t, filler)
	eventually(t, ctx, time.Minute, "a job-level storage error", func() bool { return j.Progress().Error != "" })
	p := j.Progress()
	if p.State != grouprestore.JobPaused || !strings.Contains(p.Error, "no space left on device") {
		t.Errorf("on a full disk the job is %s with error %q, want paused, no space left", p.State, p.Error)
	}
	if s := e.Stats(); s.StoragePaused != 1 || s.StorageErrors == 0 {
		t.Errorf("stats on a full disk: %+v", s)
	}
	// Still paused a little later: nothing finishes while no write succeeds.
	errs := e.Stats().StorageErrors
	eventually(t, ctx, time.Minute, "the writes to be retried", func() bool { return e.Stats().StorageErrors > errs+1 })
	if p := j.Progress(); p.State.Final() || p.Error == "" {
		t.Errorf("the job %s (error %q) while the disk is still full", p.State, p.Error)
	}
	t.Logf("job %s paused with %d of %d devices done: %s", j.ID(), p.Done, p.Total, p.Error)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	p, err = j.Wait(ctx)
	if err != nil {
		t.Fatalf("the job did not finish after the space was freed: %v (%+v)", err, p)
	}
	if p.Error != "" {
		t.Errorf("finished job still shows the error %q", p.Error)
	}
	t.Logf("job %s finished after the space was freed: %s %v", j.ID(), p.State, p.Counts)
	return j
}

// fill writes a file until the file system has no space left.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for size := len(buf); size > 0; {
		_, err := f.Write(buf[:size])
		switch {
		case errors.Is(err, syscall.ENOSPC):
			size /= 2
		case err != nil:
			t.Fatal(err)
		}
	}
}

// runInMountNamespace runs TestFullDiskPausesAndFinishes again in a child
// process with a mount namespace of its own and reports its result.
func runInMountNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounts a small tmpfs, which needs root (make test runs as root)")
	}
	args := []string{"-test.run=^TestFullDiskPausesAndFinishes$", "-test.count=1", "-test.v"}
	if testing.Short() {
		args = append(args, "-test.short")
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), diskFullEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	t.Logf("child process in its own mount namespace:\n%s", out)
	if err != nil {
		t.Fatalf("the child process failed: %v", err)
	}
	if !bytes.Contains(out, []byte("--- PASS: TestFullDiskPausesAndFinishes")) {
		t.Fatal("the child process did not pass the test")
	}
}
