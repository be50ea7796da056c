package schedule_test

import (
	"context"
	"errors"
	"maps"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/schedule"
	"github.com/fleetvault/fleetvault/schedule/scheduletest"
)

const wakeTimeout = 10 * time.Second

// memStore is a Store in memory.
type memStore struct {
	mu   sync.Mutex
	next map[string]time.Time
}

func (m *memStore) NextRuns() (map[string]time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.next), nil
}

func (m *memStore) SetNextRun(name string, next time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.next == nil {
		m.next = map[string]time.Time{}
	}
	m.next[name] = next
	return nil
}

// recorder is a RunFunc that remembers every run.
type recorder struct {
	mu   sync.Mutex
	runs []schedule.Run
}

func (r *recorder) run(_ context.Context, run schedule.Run) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs = append(r.runs, run)
	return nil
}

func (r *recorder) all() []schedule.Run {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]schedule.Run(nil), r.runs...)
}

// harness is a running loop with a fake clock.
type harness struct {
	clk    *scheduletest.Clock
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, clk *scheduletest.Clock, store schedule.Store, rec *recorder, specs ...schedule.Spec) *harness {
	t.Helper()
	l, err := schedule.New(schedule.Options{Store: store, Run: rec.run, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Set(specs); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{clk: clk, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- l.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

// stop cancels the loop and waits for Run to return.
func (h *harness) stop() {
	h.cancel()
	if err := <-h.done; err != nil && !errors.Is(err, context.Canceled) {
		panic(err)
	}
	h.done <- context.Canceled // stop is idempotent
}

// runUntil wakes the loop at each of its sleeps until the next would end at
// or after end; the clock is left at the last wake.
func (h *harness) runUntil(t *testing.T, end time.Time) {
	t.Helper()
	for {
		until := h.clk.WaitSleeping(t, wakeTimeout)
		if !until.Before(end) {
			return
		}
		h.clk.Advance(until.Sub(h.clk.Now()))
	}
}

func mustParse(t *testing.T, expr string) schedule.Cron {
	t.Helper()
	c, err := schedule.Parse(expr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// slots returns the times from first, every step, before end.
func slots(first time.Time, step time.Duration, end time.Time) []time.Time {
	var out []time.Time
	for s := first; s.Before(end); s = s.Add(step) {
		out = append(out, s)
	}
	return out
}

func checkRuns(t *testing.T, got []schedule.Run, want []time.Time, wantCatchUp map[time.Time]bool) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d runs, want %d: %v", len(got), len(want), got)
	}
	for i, r := range got {
		if !r.Slot.Equal(want[i]) || r.CatchUp != wantCatchUp[want[i]] {
			t.Fatalf("run %d: slot %v catch-up %v, want slot %v catch-up %v", i, r.Slot, r.CatchUp, want[i], wantCatchUp[want[i]])
		}
	}
}

var day0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC) // a Monday

func TestLoopCadence(t *testing.T) {
	tests := []struct {
		name string
		cron string
		span time.Duration
		step time.Duration
		from time.Time // the first slot
	}{
		{"a day of */15", "*/15 * * * *", 24 * time.Hour, 15 * time.Minute, day0},
		{"a week of 0 3 * * *", "0 3 * * *", 7 * 24 * time.Hour, 24 * time.Hour, day0.Add(3 * time.Hour)},
		{"a week of @daily", "@daily", 7 * 24 * time.Hour, 24 * time.Hour, day0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := scheduletest.NewClock(day0.Add(-time.Minute))
			rec := &recorder{}
			h := start(t, clk, &memStore{}, rec, schedule.Spec{Name: "s", Cron: mustParse(t, tt.cron)})
			end := day0.Add(tt.span)
			h.runUntil(t, end)
			want := slots(tt.from, tt.step, end)
			checkRuns(t, rec.all(), want, nil)
			for _, r := range rec.all() {
				if r.Schedule != "s" {
					t.Fatalf("run of %q", r.Schedule)
				}
			}
		})
	}
}

func TestLoopRunsAtSlotTime(t *testing.T) {
	clk := scheduletest.NewClock(day0.Add(-time.Minute))
	var mu sync.Mutex
	var lateness []time.Duration
	run := func(_ context.Context, r schedule.Run) error {
		mu.Lock()
		defer mu.Unlock()
		lateness = append(lateness, clk.Now().Sub(r.Slot))
		return nil
	}
	l, err := schedule.New(schedule.Options{Store: &memStore{}, Run: run, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Set([]schedule.Spec{{Name: "a", Cron: mustParse(t, "*/15 * * * *")}, {Name: "b", Cron: mustParse(t, "7 * * * *")}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	h := &harness{clk: clk}
	h.runUntil(t, day0.Add(6*time.Hour))
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(lateness) != 6*4+6 {
		t.Fatalf("%d runs, want %d", len(lateness), 6*4+6)
	}
	for i, d := range lateness {
		if d != 0 {
			t.Fatalf("run %d ran %v after its slot", i, d)
		}
	}
}

func TestLoopRestartOnCatalog(t *testing.T) {
	tests := []struct {
		name string
		down time.Duration // from 10:15, the last run before the stop
	}{
		{"back before the next slot", 3 * time.Minute},
		{"a slot passed while down", 23 * time.Minute},
		{"back exactly at a slot", 15 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mbr, err := catalog.Init(filepath.Join(t.TempDir(), "inst"), catalog.InitOptions{Server: "10.0.0.1"})
			if err != nil {
				t.Fatal(err)
			}
			open := func() *catalog.Catalog {
				c, err := catalog.Open(mbr, catalog.Options{})
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			c := open()
			if err := c.PutSchedule(catalog.Schedule{Name: "s", DeviceGroup: "homes", BackupGroup: "nightly", Cron: "*/15 * * * *"}); err != nil {
				t.Fatal(err)
			}
			spec := schedule.Spec{Name: "s", Cron: mustParse(t, "*/15 * * * *")}
			clk := scheduletest.NewClock(day0.Add(-time.Minute))
			rec := &recorder{}

			h := start(t, clk, c, rec, spec)
			h.runUntil(t, day0.Add(10*time.Hour+20*time.Minute)) // the last wake is 10:15
			h.stop()
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			clk.Advance(tt.down)

			c = open()
			t.Cleanup(func() { c.Close() })
			h = start(t, clk, c, rec, spec) // a new loop on the same store
			h.runUntil(t, day0.Add(24*time.Hour))
			checkRuns(t, rec.all(), slots(day0, 15*time.Minute, day0.Add(24*time.Hour)), nil)
		})
	}
}

func TestLoopDowntimeCatchesUpOnce(t *testing.T) {
	tests := []struct {
		name string
		cron string
		step time.Duration
	}{
		{"every 15 minutes", "*/15 * * * *", 15 * time.Minute},
		{"daily at 3", "0 3 * * *", 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &memStore{}
			spec := schedule.Spec{Name: "s", Cron: mustParse(t, tt.cron)}
			clk := scheduletest.NewClock(day0.Add(-time.Minute))
			rec := &recorder{}
			h := start(t, clk, store, rec, spec)
			h.runUntil(t, day0.Add(24*time.Hour))
			h.stop()
			before := len(rec.all())
			lastSlot := rec.all()[before-1].Slot
			missedFrom := lastSlot.Add(tt.step)

			clk.Advance(3*24*time.Hour + 10*time.Minute) // three days down
			restart := clk.Now()
			h = start(t, clk, store, rec, spec)
			end := restart.Add(2 * 24 * time.Hour)
			h.runUntil(t, end)

			runs := rec.all()[before:]
			if len(runs) == 0 || !runs[0].Slot.Equal(missedFrom) || !runs[0].CatchUp {
				t.Fatalf("first run after downtime: %+v, want one catch-up run for slot %v", runs, missedFrom)
			}
			// Then the normal cadence: every slot after the restart, once.
			var want []time.Time
			for s := spec.Cron.Next(restart); s.Before(end); s = spec.Cron.Next(s) {
				want = append(want, s)
			}
			checkRuns(t, runs[1:], want, nil)
		})
	}
}

func TestLoopStoreFailureRetries(t *testing.T) {
	store := &flakyStore{fail: 2}
	clk := scheduletest.NewClock(day0.Add(-time.Minute))
	rec := &recorder{}
	l, err := schedule.New(schedule.Options{Store: store, Run: rec.run, Clock: clk, RetryDelay: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Set([]schedule.Spec{{Name: "s", Cron: mustParse(t, "0 * * * *")}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	h := &harness{clk: clk}
	h.runUntil(t, day0.Add(3*time.Hour+30*time.Minute))
	// The first two writes failed: no run until the schedule's first run was
	// recorded, then every hour once.
	checkRuns(t, rec.all(), slots(day0.Add(time.Hour), time.Hour, day0.Add(3*time.Hour+30*time.Minute)), nil)
}

type flakyStore struct {
	memStore
	fail int
}

var errDisk = errors.New("disk on fire")

func (f *flakyStore) SetNextRun(name string, next time.Time) error {
	f.mu.Lock()
	if f.fail > 0 {
		f.fail--
		f.mu.Unlock()
		return errDisk
	}
	f.mu.Unlock()
	return f.memStore.SetNextRun(name, next)
}

func TestLoopSetValidates(t *testing.T) {
	l, err := schedule.New(schedule.Options{Store: &memStore{}, Run: (&recorder{}).run})
	if err != nil {
		t.Fatal(err)
	}
	c := mustParse(t, "@hourly")
	for name, specs := range map[string][]schedule.Spec{
		"no name":   {{Cron: c}},
		"no cron":   {{Name: "a"}},
		"duplicate": {{Name: "a", Cron: c}, {Name: "a", Cron: c}},
	} {
		t.Run(name, func(t *testing.T) {
			if err := l.Set(specs); !errors.Is(err, schedule.ErrInvalid) {
				t.Fatalf("Set = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := schedule.New(schedule.Options{}); !errors.Is(err, schedule.ErrInvalid) {
		t.Fatalf("New without store = %v", err)
	}
}

// TestLoopChangedCron: a schedule whose cron expression changes (the
// catalog resets its next run) follows the new expression from the next
// Set on, without one more run at the old expression's slot.
func TestLoopChangedCron(t *testing.T) {
	mbr, err := catalog.Init(filepath.Join(t.TempDir(), "inst"), catalog.InitOptions{Server: "10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := catalog.Open(mbr, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	put := func(expr string) schedule.Spec {
		if err := c.PutSchedule(catalog.Schedule{Name: "s", DeviceGroup: "homes", BackupGroup: "nightly", Cron: expr}); err != nil {
			t.Fatal(err)
		}
		return schedule.Spec{Name: "s", Cron: mustParse(t, expr)}
	}
	clk := scheduletest.NewClock(day0.Add(-time.Minute))
	rec := &recorder{}
	l, err := schedule.New(schedule.Options{Store: c, Run: rec.run, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Set([]schedule.Spec{put("*/15 * * * *")}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() { cancel(); <-done }()
	h := &harness{clk: clk}
	h.runUntil(t, day0.Add(40*time.Minute)) // runs 00:00, 00:15, 00:30
	if err := l.Set([]schedule.Spec{put("0 * * * *")}); err != nil {
		t.Fatal(err)
	}
	// The loop re-reads the store and sleeps until 01:00, not 00:45.
	waitFor(t, func() bool { until, ok := clk.Sleeping(); return ok && until.Equal(day0.Add(time.Hour)) })
	h.runUntil(t, day0.Add(3*time.Hour+30*time.Minute))
	want := append(slots(day0, 15*time.Minute, day0.Add(40*time.Minute)), slots(day0.Add(time.Hour), time.Hour, day0.Add(3*time.Hour+30*time.Minute))...)
	checkRuns(t, rec.all(), want, nil)
}

// waitFor polls cond for up to wakeTimeout.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wakeTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", wakeTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}
