package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Store keeps each schedule's next run, so a restarted loop resumes where
// the last one stopped. catalog.Catalog implements it in the resource
// database.
type Store interface {
	// NextRuns returns the stored next run of every schedule that has one,
	// by schedule name.
	NextRuns() (map[string]time.Time, error)
	// SetNextRun records the next run of schedule name. It must be durable
	// when it returns: the loop runs a schedule only after its following
	// run is recorded, which is what keeps a restart from doubling a run.
	SetNextRun(name string, next time.Time) error
}

// Spec names a schedule and its cron expression.
type Spec struct {
	Name string
	Cron Cron
}

// Run is one firing of a schedule, given to the loop's RunFunc.
type Run struct {
	Schedule string
	// Slot is the time the run was due: a cron slot. Together with
	// Schedule it identifies the run, so a job keyed by both is idempotent.
	Slot time.Time
	// CatchUp is true when later slots also passed before the loop could
	// run this one (downtime): they are folded into this one run.
	CatchUp bool
}

// RunFunc is what a run does (for Fleetvault: a group backup into a backup
// group, then retention). The loop calls it from its own goroutine, one run
// at a time: it should start the work and return, or return quickly. Its
// error is logged; the schedule still moves on to its next slot.
type RunFunc func(ctx context.Context, r Run) error

// Options configure a Loop.
type Options struct {
	Store  Store        // required
	Run    RunFunc      // required
	Clock  Clock        // nil: the system clock
	Logger *slog.Logger // nil: discard
	// RetryDelay is how long the loop waits before trying again when the
	// store fails; 0 means one minute.
	RetryDelay time.Duration
}

// Loop drives every schedule from one goroutine (Run). It is safe for
// concurrent use: Set may be called while Run runs.
type Loop struct {
	opts  Options
	log   *slog.Logger
	wake  chan struct{}
	mu    sync.Mutex
	specs []Spec
}

// New returns a loop with no schedules; give it some with Set.
func New(opts Options) (*Loop, error) {
	if opts.Store == nil || opts.Run == nil {
		return nil, fmt.Errorf("schedule: new loop: %w: Store and Run are required", ErrInvalid)
	}
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RetryDelay <= 0 {
		opts.RetryDelay = time.Minute
	}
	return &Loop{opts: opts, log: opts.Logger, wake: make(chan struct{}, 1)}, nil
}

// Set replaces the loop's schedules. Names must be unique and non-empty.
// The loop then reads the next runs from the store again: a schedule new to
// the store, or whose next run the store reset (catalog.PutSchedule does
// when the cron expression changes), first runs at its first slot after
// now.
func (l *Loop) Set(specs []Spec) error {
	seen := map[string]bool{}
	for _, s := range specs {
		if s.Name == "" || s.Cron.sched == nil {
			return fmt.Errorf("schedule: set: %w: a schedule needs a name and a parsed cron expression (%q)", ErrInvalid, s.Name)
		}
		if seen[s.Name] {
			return fmt.Errorf("schedule: set: %w: schedule %q named twice", ErrInvalid, s.Name)
		}
		seen[s.Name] = true
	}
	sorted := append([]Spec(nil), specs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	l.mu.Lock()
	l.specs = sorted
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return nil
}

// Run drives the schedules until ctx is done, then returns ctx's error.
// Start one Run per store: two loops on one store would both run each slot.
func (l *Loop) Run(ctx context.Context) error {
	var next map[string]time.Time
	for {
		wait := l.opts.RetryDelay
		if next == nil {
			var err error
			if next, err = l.opts.Store.NextRuns(); err != nil {
				l.log.Error("schedule: cannot read next runs; retrying", "err", err, "retry_in", l.opts.RetryDelay)
				next = nil
			} else if next == nil {
				next = map[string]time.Time{}
			}
		}
		if next != nil {
			until := l.tick(ctx, next)
			wait = max(until.Sub(l.opts.Clock.Now()), 0)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-l.wake:
			next = nil // Set: read the next runs again (a changed schedule's may have been reset)
		case <-l.opts.Clock.After(wait):
		}
	}
}

// tick runs every due schedule once and returns when to wake next.
func (l *Loop) tick(ctx context.Context, next map[string]time.Time) time.Time {
	l.mu.Lock()
	specs := l.specs
	l.mu.Unlock()
	now := l.opts.Clock.Now()
	until := now.Add(24 * time.Hour) // no schedules: sleep until Set wakes the loop
	for _, s := range specs {
		if ctx.Err() != nil {
			return now
		}
		at, err := l.step(ctx, s, next, now)
		if err != nil {
			l.log.Error("schedule: cannot move to the next run; retrying", "schedule", s.Name, "err", err, "retry_in", l.opts.RetryDelay)
			at = now.Add(l.opts.RetryDelay)
		}
		if !at.IsZero() && at.Before(until) { // zero: the expression fires no more
			until = at
		}
	}
	return until
}

// step runs schedule s if due at now and returns its next run.
func (l *Loop) step(ctx context.Context, s Spec, next map[string]time.Time, now time.Time) (time.Time, error) {
	at, known := next[s.Name]
	if !known {
		first := s.Cron.Next(now)
		if first.IsZero() {
			return now, fmt.Errorf("schedule %q: %w: %q fires no more", s.Name, ErrInvalid, s.Cron)
		}
		if err := l.opts.Store.SetNextRun(s.Name, first); err != nil {
			return now, err
		}
		next[s.Name] = first
		l.log.Info("schedule: first run set", "schedule", s.Name, "cron", s.Cron.String(), "next", first)
		return first, nil
	}
	if at.After(now) {
		return at, nil
	}
	// Due. Every slot up to now folds into this one run.
	following := s.Cron.Next(now)
	if following.IsZero() {
		return now, fmt.Errorf("schedule %q: %w: %q fires no more", s.Name, ErrInvalid, s.Cron)
	}
	if err := l.opts.Store.SetNextRun(s.Name, following); err != nil {
		return now, err
	}
	next[s.Name] = following
	r := Run{Schedule: s.Name, Slot: at, CatchUp: !s.Cron.Next(at).After(now)}
	l.log.Info("schedule: run", "schedule", s.Name, "slot", at, "catch_up", r.CatchUp, "next", following)
	if err := l.opts.Run(ctx, r); err != nil && !errors.Is(err, context.Canceled) {
		l.log.Error("schedule: run failed", "schedule", s.Name, "slot", at, "err", err)
	}
	return following, nil
}
