package scenario

import (
	"runtime/metrics"
	"sync"
	"syscall"
	"time"

	"github.com/fleetvault/fleetvault/devicesim/simbench"
)

// PhaseMemory is where the server process's memory went during one phase
// of a benchmark: its peak resident memory and, sampled every few
// milliseconds, the largest heap, goroutine stacks and goroutine count seen.
type PhaseMemory struct {
	Phase      string  `json:"phase"`
	PeakRSSMB  float64 `json:"server_peak_rss_mb"`
	HeapMB     float64 `json:"heap_mb"`      // live and not yet collected objects
	HeapGoalMB float64 `json:"heap_goal_mb"` // where the GC aimed to finish
	StacksMB   float64 `json:"stacks_mb"`    // goroutine stacks
	Goroutines int     `json:"goroutines"`
	Seconds    float64 `json:"seconds"`
	// CPUSeconds is the server process's CPU time (user and system) in the
	// phase: unlike Seconds, it hardly depends on what else the machine runs.
	CPUSeconds float64 `json:"cpu_seconds"`
}

// phaseSamples names the runtime metrics a phase keeps the maximum of, in
// the order of phaseMeter.peaks.
func phaseSamples() []metrics.Sample {
	return []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/heap/goal:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
		{Name: "/sched/goroutines:goroutines"},
	}
}

// phaseMeter samples the server process while one phase runs.
type phaseMeter struct {
	name  string
	t0    time.Time
	cpu0  float64
	stop  chan struct{}
	done  sync.WaitGroup
	peaks [4]uint64
}

// startPhase resets the process's peak resident memory and samples the
// runtime until end is called.
func startPhase(name string) *phaseMeter {
	_ = simbench.ResetPeakRSS(0) // without /proc the peak is the process's
	m := &phaseMeter{name: name, t0: time.Now(), cpu0: processCPUSeconds(), stop: make(chan struct{})}
	m.done.Add(1)
	go m.run()
	return m
}

func (m *phaseMeter) run() {
	defer m.done.Done()
	s := phaseSamples()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		metrics.Read(s)
		for i := range s {
			if s[i].Value.Kind() == metrics.KindUint64 {
				m.peaks[i] = max(m.peaks[i], s[i].Value.Uint64())
			}
		}
		select {
		case <-m.stop:
			return
		case <-tick.C:
		}
	}
}

// end stops sampling and returns what the phase used.
func (m *phaseMeter) end() PhaseMemory {
	close(m.stop)
	m.done.Wait()
	const mib = 1 << 20
	return PhaseMemory{Phase: m.name, PeakRSSMB: simbench.PeakRSSMB(0), HeapMB: float64(m.peaks[0]) / mib,
		HeapGoalMB: float64(m.peaks[1]) / mib, StacksMB: float64(m.peaks[2]) / mib, Goroutines: int(m.peaks[3]),
		Seconds: time.Since(m.t0).Seconds(), CPUSeconds: processCPUSeconds() - m.cpu0}
}

// processCPUSeconds is this process's CPU time so far, user and system; 0
// where getrusage is not available.
func processCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
