package grouprestore

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
)

// engineWith makes the fleet's engine with quick storage retries.
func (f *fleet) engineWith(retry StorageRetry) *Engine {
	f.t.Helper()
	e, err := New(Options{JournalPath: f.journal, CreateJournal: true, Catalog: f.cat, Directory: f.dir, Transports: map[string]agent.Transport{"mqtt": f.tr},
		StorageRetry: retry})
	if err != nil {
		f.t.Fatal(err)
	}
	return e
}

func diskFull() *error {
	var err error = &fs.PathError{Op: "write", Path: "catalog.db", Err: syscall.ENOSPC}
	return &err
}

// storingJob is a job of the model house's homes that stores one piece of
// typ per device and ends each device in end.
type storingJob struct {
	name string
	spec Spec
	end  State
	typ  string
}

// storingJobs are a backup (its pieces) and a restore (its undo snapshots).
func storingJobs(concurrency int) []storingJob {
	return []storingJob{
		{name: "backup", spec: Spec{Kind: KindBackup, Source: "homes", Target: "homes-backup", Rollout: Rollout{Concurrency: concurrency}}, end: BackedUp, typ: "settings"},
		{name: "restore snapshots", spec: restoreSpec(Rollout{Concurrency: concurrency}), end: Restored, typ: "snapshot"},
	}
}

// checkOnePieceEach fails unless the job stored exactly one piece of typ for
// each device.
func checkOnePieceEach(t *testing.T, f *fleet, job, typ string) {
	t.Helper()
	n := f.cat.jobPieces(job, typ)
	for id := range f.devices {
		if n[id] != 1 {
			t.Errorf("%s: %d %s pieces from job %s, want 1", id, n[id], typ, job)
		}
	}
}

// TestStorageErrorPausesAndResumes: while the catalog's writes fail with
// ENOSPC the job pauses with a job-level error and starts no device; when
// they succeed again it goes on by itself and every device ends with one
// piece.
func TestStorageErrorPausesAndResumes(t *testing.T) {
	for _, tc := range storingJobs(2) {
		t.Run(tc.name, func(t *testing.T) {
			f := modelHouse(t, 8)
			e := f.engineWith(StorageRetry{First: time.Millisecond, Max: 10 * time.Millisecond})
			defer e.Close()
			f.cat.storeErr.Store(diskFull())
			j, err := e.Start(context.Background(), tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			checkFor(t, 10*time.Second, func() bool { return j.Progress().Error != "" }, "a job-level error")
			p := j.Progress()
			if p.State != JobPaused || !strings.Contains(p.Error, "no space left on device") {
				t.Errorf("paused job: state %s, error %q", p.State, p.Error)
			}
			if s := e.Stats(); s.StoragePaused != 1 || s.StorageErrors == 0 {
				t.Errorf("stats %+v, want one job paused and errors counted", s)
			}
			checkFor(t, 10*time.Second, func() bool { return e.Stats().StorageErrors >= 10 }, "the write retried")
			if p := j.Progress(); p.Done != 0 || p.Error == "" {
				t.Errorf("while the disk is full: %d devices done, error %q", p.Done, p.Error)
			}
			f.cat.storeErr.Store(nil)
			p = wait(t, j)
			if p.State != JobDone || p.Counts[tc.end] != 8 || p.Error != "" {
				t.Fatalf("after space came back: %+v", p)
			}
			if s := e.Stats(); s.StoragePaused != 0 {
				t.Errorf("stats %+v after the job ended", s)
			}
			checkOnePieceEach(t, f, j.ID(), tc.typ)
		})
	}
}

// TestFailedWriteThatCommittedIsNotRepeated: a store that committed but
// reported a storage error (a failed fsync) is not stored a second time.
func TestFailedWriteThatCommittedIsNotRepeated(t *testing.T) {
	f := modelHouse(t, 6)
	e := f.engineWith(StorageRetry{First: time.Millisecond, Max: 5 * time.Millisecond})
	defer e.Close()
	f.cat.lateErr.Store(diskFull())
	j, err := e.Start(context.Background(), Spec{Kind: KindBackup, Source: "homes", Target: "homes-backup"})
	if err != nil {
		t.Fatal(err)
	}
	checkFor(t, 10*time.Second, func() bool { return e.Stats().StorageErrors >= 3 }, "failed stores")
	f.cat.lateErr.Store(nil)
	if p := wait(t, j); p.Counts[BackedUp] != 6 {
		t.Fatalf("progress %+v", p)
	}
	checkOnePieceEach(t, f, j.ID(), "settings")
}

// TestOtherErrorsStillFail: an error that is not the disk's ends the device
// failed, as before, and does not pause the job.
func TestOtherErrorsStillFail(t *testing.T) {
	f := modelHouse(t, 2)
	e := f.engineWith(StorageRetry{First: time.Millisecond})
	defer e.Close()
	bad := errors.New("catalog: invalid: a client contains a NUL byte")
	f.cat.storeErr.Store(&bad)
	j, err := e.Start(context.Background(), Spec{Kind: KindBackup, Source: "homes", Target: "homes-backup"})
	if err != nil {
		t.Fatal(err)
	}
	if p := wait(t, j); p.Counts[Failed] != 2 || e.Stats().StorageErrors != 0 {
		t.Fatalf("progress %+v, stats %+v", p, e.Stats())
	}
}

// TestResumedJobStoresOnePieceEach: the engine stops after the catalog
// committed a device's piece but before the journal recorded it (as a
// process killed between the two); the resumed job finds that piece and
// stores no second one.
func TestResumedJobStoresOnePieceEach(t *testing.T) {
	for _, tc := range storingJobs(3) {
		t.Run(tc.name, func(t *testing.T) {
			f := modelHouse(t, 10)
			f.cat.holdAfterStore.Store(true)
			e := f.engine()
			j, err := e.Start(context.Background(), tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			checkFor(t, 10*time.Second, func() bool { return len(f.cat.jobPieces(j.ID(), tc.typ)) > 0 }, "a piece committed")
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			f.cat.holdAfterStore.Store(false)
			e2 := f.engine()
			defer e2.Close()
			jobs, err := e2.Resume(context.Background())
			if err != nil || len(jobs) != 1 {
				t.Fatalf("resume: %v %v", jobs, err)
			}
			if p := wait(t, jobs[0]); p.State != JobDone || p.Counts[tc.end] != 10 {
				t.Fatalf("after resume: %+v", p)
			}
			checkOnePieceEach(t, f, j.ID(), tc.typ)
		})
	}
}
