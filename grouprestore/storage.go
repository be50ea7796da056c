package grouprestore

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"time"
)

// Storage errors. A write to the journal or the catalog that fails because
// the disk is full or failing (IsStorageError) does not fail the device or
// the job: the job pauses with a job-level error (Progress.Error), starts no
// device, and every writer retries its own write with a doubling delay
// capped at StorageRetry.Max. The first write that succeeds again clears the
// error and the job goes on by itself. Nothing is reported to a person, or
// acknowledged, before it is durable, so a paused job loses nothing; a
// process killed while paused resumes from the journal as after any crash.

// StorageRetry bounds the retries of a failed write.
type StorageRetry struct {
	First time.Duration // the first retry's delay (default 250ms), doubled each time...
	Max   time.Duration // ...up to this (default 30s)
}

func (s StorageRetry) withDefaults() StorageRetry {
	if s.First <= 0 {
		s.First = 250 * time.Millisecond
	}
	if s.Max < s.First {
		s.Max = max(s.First, 30*time.Second)
	}
	return s
}

// storageErrnos are the errors of a disk that is full or failing, which
// freeing space or repairing the disk can end.
var storageErrnos = []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EIO, syscall.EROFS, syscall.EFBIG, syscall.ENOMEM}

// IsStorageError reports whether err is a write that failed for want of
// space or because the disk failed (ENOSPC, EDQUOT, EIO, EROFS, EFBIG,
// ENOMEM): a job pauses on it and retries.
func IsStorageError(err error) bool {
	for _, e := range storageErrnos {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// storageState is a job's job-level storage error; guarded by Job.mu except
// the paused flag, which lets the common path (no error) skip the lock.
type storageState struct {
	paused atomic.Bool
	err    string        // what failed and when it is retried; "" when writes succeed
	since  time.Time     // when the pause began
	wake   chan struct{} // closed when the pause ends
}

// storageError returns the job-level storage error, "" when there is none.
func (j *Job) storageError() string {
	if !j.storage.paused.Load() {
		return ""
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.storage.err
}

// storageWait returns a channel closed when the job's storage pause ends, or
// nil when it is not paused. The caller holds j.mu.
func (j *Job) storageWaitLocked() <-chan struct{} {
	if j.storage.err == "" {
		return nil
	}
	return j.storage.wake
}

// storageFailed pauses the job (if it is not already) with the error.
func (j *Job) storageFailed(what string, err error, retry time.Duration) {
	j.mu.Lock()
	defer j.mu.Unlock()
	first := j.storage.err == ""
	if first {
		j.storage.since = time.Now()
		j.storage.wake = make(chan struct{})
		j.storage.paused.Store(true)
	}
	j.storage.err = fmt.Sprintf("storage: %s failed: %v; the job is paused since %s and retries by itself (next in %s): free space or repair the disk",
		what, err, j.storage.since.UTC().Format(time.RFC3339), retry.Round(time.Millisecond))
	if first {
		j.e.log.Error("grouprestore: a write failed; job paused until writes succeed again", "job", j.id, "what", what, "err", err)
	}
}

// storageRecovered ends the job's storage pause, if any.
func (j *Job) storageRecovered() {
	if !j.storage.paused.Load() {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.storage.err == "" {
		return
	}
	j.e.log.Info("grouprestore: writes succeed again; job goes on", "job", j.id, "paused_for", time.Since(j.storage.since).Round(time.Millisecond).String())
	j.storage.err = ""
	close(j.storage.wake)
	j.storage.paused.Store(false)
}

// durable runs a write until it succeeds, pausing the job while it fails with
// a storage error. Other errors, and the engine closing, end it. fn must be
// safe to run again after it failed (idempotent).
func (r *run) durable(ctx context.Context, what string, fn func() error) error {
	delay := r.e.retry.First
	for {
		err := fn()
		if err == nil {
			r.j.storageRecovered()
			return nil
		}
		if ctx.Err() != nil || !IsStorageError(err) {
			return err
		}
		r.e.stats.storageErrors.Add(1)
		r.j.storageFailed(what, err, delay)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		delay = min(2*delay, r.e.retry.Max)
	}
}

// record journals a device's outcome durably (see durable).
func (r *run) record(ctx context.Context, seq int, d DeviceOutcome) error {
	return r.durable(ctx, "journal device "+d.Device, func() error { return r.e.journal.record(ctx, r.j.id, seq, d) })
}
