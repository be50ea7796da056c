package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/schedule"
)

// rpoCheck names the scheduler's own periodic task, the RPO check, among
// the schedules of its loop. A NUL byte cannot be in a schedule's name
// (service.CheckName), so it never clashes with one.
const rpoCheck = "\x00rpo-check"

// defaultRPOInterval is how often the RPOs are checked between runs.
const defaultRPOInterval = time.Minute

// scheduler runs the resource database's schedules in one schedule.Loop
// and, in the same loop, checks every device's RPO every RPOInterval.
type scheduler struct {
	s        *Server
	loop     *schedule.Loop
	interval schedule.Cron
	cancel   context.CancelFunc
	done     chan struct{}
}

// startScheduler starts the loop; Close stops it before the engine stops.
func (s *Server) startScheduler(opts Options) error {
	every := opts.RPOInterval
	if every <= 0 {
		every = defaultRPOInterval
	}
	interval, err := schedule.Parse("@every " + every.String())
	if err != nil {
		return fmt.Errorf("RPO check interval %v: %w", every, err)
	}
	sc := &scheduler{s: s, interval: interval, done: make(chan struct{})}
	sc.loop, err = schedule.New(schedule.Options{Store: &schedulerStore{Store: s.Catalog}, Run: sc.run, Clock: opts.ScheduleClock, Logger: s.log})
	if err != nil {
		return err
	}
	if err := sc.reload(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	sc.cancel = cancel
	go func() {
		defer close(sc.done)
		_ = sc.loop.Run(ctx) // returns ctx's error on Close
	}()
	s.sched = sc
	s.closers = append(s.closers, func() error {
		cancel()
		<-sc.done
		return nil
	})
	// A first check at once, so the metrics hold figures from the start.
	if _, err := s.Service.CheckRPO(ctx); err != nil {
		s.log.Error("RPO check failed", "err", err)
	}
	return nil
}

// reloadSchedules gives the loop the schedules as they now are (the service
// calls it after a schedule is added, replaced or removed).
func (s *Server) reloadSchedules() {
	if s.sched == nil {
		return
	}
	if err := s.sched.reload(); err != nil {
		s.log.Error("scheduler: reload the schedules", "err", err)
	}
}

// reload reads the schedules and hands them, with the RPO check, to the loop.
// A schedule whose cron expression no longer parses is logged and skipped.
func (sc *scheduler) reload() error {
	all, err := sc.s.Catalog.Schedules()
	if err != nil {
		return fmt.Errorf("scheduler: read the schedules: %w", err)
	}
	specs := []schedule.Spec{{Name: rpoCheck, Cron: sc.interval}}
	for _, c := range all {
		cr, err := schedule.Parse(c.Cron)
		if err != nil {
			sc.s.log.Error("scheduler: schedule skipped", "schedule", c.Name, "err", err)
			continue
		}
		specs = append(specs, schedule.Spec{Name: c.Name, Cron: cr})
	}
	return sc.loop.Set(specs)
}

// run is the loop's RunFunc: the RPO check, or a schedule's run (backup,
// wait, retention, record, RPO check), done before the loop moves on.
func (sc *scheduler) run(ctx context.Context, r schedule.Run) error {
	if r.Schedule == rpoCheck {
		_, err := sc.s.Service.CheckRPO(ctx)
		return err
	}
	_, err := sc.s.Service.RunScheduled(ctx, r)
	return err
}

// schedulerStore keeps the next run of the RPO check in memory (a restart
// checks at once anyway) and every schedule's in the resource database.
type schedulerStore struct {
	schedule.Store
	mu  sync.Mutex
	rpo time.Time
}

func (st *schedulerStore) NextRuns() (map[string]time.Time, error) {
	m, err := st.Store.NextRuns()
	if err != nil {
		return nil, err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.rpo.IsZero() {
		m[rpoCheck] = st.rpo
	}
	return m, nil
}

func (st *schedulerStore) SetNextRun(name string, next time.Time) error {
	if name != rpoCheck {
		return st.Store.SetNextRun(name, next)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.rpo = next
	return nil
}

// rpoMetrics are the RPO gauges: per schedule, not per device (a schedule
// may hold 10,000 devices).
type rpoMetrics struct {
	devices *prometheus.GaugeVec // schedule, state
	age     *prometheus.GaugeVec // schedule
}

func newRPOMetrics() *rpoMetrics {
	return &rpoMetrics{
		devices: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fleetvault_rpo_devices",
			Help: "Devices of each schedule with an RPO, by state at the last check: met, missed, or unknown (never backed up).",
		}, []string{"schedule", "state"}),
		age: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fleetvault_backup_age_seconds",
			Help: "Age of the oldest last successful backup among the devices of each schedule with an RPO (devices never backed up left out).",
		}, []string{"schedule"}),
	}
}

// set replaces the gauges with the figures of one RPO check.
func (m *rpoMetrics) set(st []apiclient.RPOStatus) {
	type counts struct {
		n   map[string]int
		age int64
	}
	by := map[string]*counts{}
	for _, r := range st {
		c := by[r.Schedule]
		if c == nil {
			c = &counts{n: map[string]int{apiclient.RPOMet: 0, apiclient.RPOMissed: 0, apiclient.RPOUnknown: 0}}
			by[r.Schedule] = c
		}
		c.n[r.State]++
		if r.LastSuccess != nil {
			c.age = max(c.age, r.AgeSeconds)
		}
	}
	m.devices.Reset() // a removed schedule's series go
	m.age.Reset()
	for name, c := range by {
		for state, n := range c.n {
			m.devices.WithLabelValues(name, state).Set(float64(n))
		}
		m.age.WithLabelValues(name).Set(float64(c.age))
	}
}
