package grouprestore

import (
	"context"
	"sync"
	"time"
)

// Progress is a snapshot of a job: counts per state, rate and time left.
type Progress struct {
	Job    string   `json:"job"`
	Kind   Kind     `json:"kind"`
	State  JobState `json:"state"`
	Reason string   `json:"reason,omitempty"`
	// Error is the job-level error while the job is paused by a failing
	// write (the disk full or failing); it clears when writes succeed again.
	Error     string        `json:"error,omitempty"`
	Started   time.Time     `json:"started"`
	Total     int           `json:"total"`
	Done      int           `json:"done"`
	Counts    map[State]int `json:"counts"`
	Elapsed   time.Duration `json:"elapsed_ns"`
	PerSecond float64       `json:"devices_per_s"`
	Remaining time.Duration `json:"eta_ns"` // estimated time left; 0 when unknown or done
}

// Job is a running (or finished) job. Its methods are safe for concurrent use.
type Job struct {
	id    string
	spec  Spec
	e     *Engine
	start time.Time

	mu       sync.Mutex
	rec      JobRecord
	devs     []DeviceOutcome
	counts   map[State]int
	done     int
	paused   bool
	resume   chan struct{} // closed when a pause ends
	stop     JobState      // JobCancelled or JobAborted once requested
	reason   string
	finished chan struct{}
	stopCh   chan struct{} // closed when a cancel or abort is requested
	watchers map[chan Progress]struct{}
	storage  storageState // a job-level storage error pauses the job
}

// ID returns the job's id.
func (j *Job) ID() string { return j.id }

// Spec returns what the job does.
func (j *Job) Spec() Spec { return j.spec }

// Done is closed when the job has ended.
func (j *Job) Done() <-chan struct{} { return j.finished }

// Wait blocks until the job ends or ctx ends, and returns its final progress.
func (j *Job) Wait(ctx context.Context) (Progress, error) {
	select {
	case <-j.finished:
		return j.Progress(), nil
	case <-ctx.Done():
		return j.Progress(), ctx.Err()
	}
}

// Progress returns the job's current counts.
func (j *Job) Progress() Progress {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.progressLocked()
}

func (j *Job) progressLocked() Progress {
	p := Progress{Job: j.id, Kind: j.spec.Kind, State: j.rec.State, Reason: j.rec.Reason, Error: j.storage.err, Started: j.start, Total: len(j.devs), Done: j.done, Counts: make(map[State]int, len(j.counts))}
	if p.Error != "" && p.State == JobRunning {
		p.State = JobPaused
	}
	for s, n := range j.counts {
		p.Counts[s] = n
	}
	end := time.Now()
	if j.rec.State.Final() {
		end = time.UnixMilli(j.rec.Updated)
	}
	p.Elapsed = end.Sub(j.start)
	if secs := p.Elapsed.Seconds(); secs > 0 {
		p.PerSecond = float64(j.done) / secs
	}
	if !j.rec.State.Final() && p.PerSecond > 0 {
		p.Remaining = time.Duration(float64(p.Total-p.Done) / p.PerSecond * float64(time.Second))
	}
	return p
}

// Record returns the job's journal record as it stands (without the frozen
// candidates).
func (j *Job) Record() JobRecord {
	j.mu.Lock()
	defer j.mu.Unlock()
	rec := j.rec
	rec.Candidates = nil
	return rec
}

// Devices returns every device's outcome so far, in plan order.
func (j *Job) Devices() []DeviceOutcome {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]DeviceOutcome(nil), j.devs...)
}

// Cancel stops the job: no device is started after it; devices in flight
// finish; the rest are skipped.
func (j *Job) Cancel() { j.halt(JobCancelled, "cancelled") }

// Pause stops starting devices until Resume. Devices in flight finish. (A job
// also pauses by itself while writes fail: see Progress.Error.)
func (j *Job) Pause() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.paused || j.rec.State.Final() {
		return
	}
	j.paused = true
	j.resume = make(chan struct{})
	j.rec.State = JobPaused
	j.persistLocked()
}

// Resume continues a paused job.
func (j *Job) Resume() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.paused {
		return
	}
	j.paused = false
	close(j.resume)
	j.rec.State = JobRunning
	j.persistLocked()
}

func (j *Job) halt(state JobState, reason string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.stop != "" || j.rec.State.Final() {
		return
	}
	j.stop, j.reason = state, reason
	close(j.stopCh)
	if j.paused {
		j.paused = false
		close(j.resume)
	}
}

// gate waits while the job is paused and reports whether devices may still start.
func (j *Job) gate(ctx context.Context) bool {
	for {
		j.mu.Lock()
		stop, paused, resume, storage := j.stop, j.paused, j.resume, j.storageWaitLocked()
		j.mu.Unlock()
		if stop != "" {
			return false
		}
		if !paused && storage == nil {
			return ctx.Err() == nil
		}
		wait := storage // paused by a failing write until one succeeds...
		if paused {
			wait = resume // ...or by a person until Resume
		}
		select {
		case <-wait:
		case <-j.stopCh:
		case <-ctx.Done():
			return false
		}
	}
}

// stopped reports whether a cancel or abort was requested.
func (j *Job) stopped() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.stop != ""
}

// Watch returns a channel of progress snapshots, sent at most every interval
// and once more when the job ends, after which it is closed. Call cancel to
// stop watching early.
func (j *Job) Watch(interval time.Duration) (<-chan Progress, func()) {
	ch := make(chan Progress, 1)
	quit := make(chan struct{})
	var once sync.Once
	go func() {
		defer close(ch)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-j.finished:
				select {
				case ch <- j.Progress():
				case <-quit:
				}
				return
			case <-t.C:
				select {
				case ch <- j.Progress():
				default: // a slow watcher misses a tick, never blocks the job
				}
			case <-quit:
				return
			}
		}
	}()
	return ch, func() { once.Do(func() { close(quit) }) }
}

// settle records a device's outcome in memory once it is durable.
func (j *Job) settle(seq int, o DeviceOutcome) {
	j.mu.Lock()
	defer j.mu.Unlock()
	prev := j.devs[seq].State
	j.devs[seq] = o
	if o.State.Final() && !prev.Final() {
		j.done++
		j.counts[o.State]++
	}
}

// persistLocked journals the job record; errors are logged, the in-memory state stands.
func (j *Job) persistLocked() {
	j.rec.Updated = time.Now().UnixMilli()
	if err := j.e.journal.putJob(j.rec); err != nil {
		j.e.log.Error("grouprestore: journal job state", "job", j.id, "err", err)
	}
}
