package simbench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/devicesim"
	"github.com/fleetvault/fleetvault/identifiers"
)

// exchangeTimeout bounds one round trip in a measurement.
const exchangeTimeout = 10 * time.Second

// Count is the outcome of one measurement.
type Count struct {
	Requests uint64  // round trips completed
	Errors   uint64  // round trips that failed (timeout, refusal)
	Seconds  float64 // how long it ran
}

func (c *Count) add(o Count) {
	c.Requests += o.Requests
	c.Errors += o.Errors
	c.Seconds += o.Seconds
}

// PerSecond is the rate of completed round trips.
func (c Count) PerSecond() float64 {
	if c.Seconds <= 0 {
		return 0
	}
	return float64(c.Requests) / c.Seconds
}

// Drive runs concurrency workers for d, each doing one exchange at a time
// with the targets in turn, so at most concurrency are outstanding.
func Drive(ctx context.Context, d time.Duration, concurrency, targets int, do func(ctx context.Context, i int) error) (Count, error) {
	if targets == 0 {
		return Count{}, fmt.Errorf("simbench: no device to measure against")
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	// An exchange under way when d ends runs to its end: its own context.
	c, firstErr := work(ctx, context.Background(), concurrency, func(n int) (int, bool) { return n % targets, true }, do)
	if c.Requests == 0 && c.Errors > 0 {
		return c, fmt.Errorf("simbench: every round trip failed, the first with: %v", firstErr)
	}
	return c, nil
}

// work runs concurrency workers until ctx ends or pick, given how many
// exchanges were started before, says there is none left; each exchange runs
// under a context of parent with exchangeTimeout. It counts them and keeps
// the first error.
func work(ctx, parent context.Context, concurrency int, pick func(n int) (int, bool), do func(ctx context.Context, i int) error) (Count, error) {
	var next, ok, failed atomic.Uint64
	var firstErr atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < max(concurrency, 1); w++ {
		wg.Go(func() {
			for ctx.Err() == nil {
				i, more := pick(int(next.Add(1) - 1))
				if !more {
					return
				}
				ectx, cancel := context.WithTimeout(parent, exchangeTimeout)
				err := do(ectx, i)
				cancel()
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	err, _ := firstErr.Load().(error)
	return Count{Requests: ok.Load(), Errors: failed.Load(), Seconds: time.Since(start).Seconds()}, err
}

// healthy lists the identifiers of the fleet's devices of a transport that
// have no fault and should be answering.
func healthy(fleet *devicesim.Fleet, transport string) []identifiers.ID {
	var out []identifiers.ID
	for _, d := range healthyDevices(fleet, transport) {
		out = append(out, d.Identifier)
	}
	return out
}

// healthyDevices lists the fleet's devices of a transport that have no fault.
func healthyDevices(fleet *devicesim.Fleet, transport string) []devicesim.DeviceInfo {
	var out []devicesim.DeviceInfo
	for _, d := range fleet.Devices() {
		if d.Transport == transport && d.Faults == (devicesim.DeviceFaults{}) {
			out = append(out, d)
		}
	}
	return out
}

// tagProbe returns the probe of the i-th of devs: a READ:SETTINGS?TAG
// through tr, naming the device (agent.WithDevice) for a transport that
// authenticates it.
func tagProbe(tr agent.Transport, devs []devicesim.DeviceInfo) func(ctx context.Context, i int) error {
	targets := make([]identifiers.ID, len(devs))
	for i, d := range devs {
		targets[i] = d.Identifier
		targets[i].Method, targets[i].Params, targets[i].Location = agent.MethodRead, []string{agent.ParamSettings}, agent.LocTag
	}
	return func(ctx context.Context, i int) error {
		resp, err := tr.Do(agent.WithDevice(ctx, devs[i].ID), targets[i], &agent.Request{})
		if err != nil {
			return err
		}
		if resp.Err != nil {
			return resp.Err
		}
		if len(resp.Tag) == 0 {
			return fmt.Errorf("simbench: %s answered no tag", targets[i].Address)
		}
		return nil
	}
}

// Once probes each of the fleet's healthy devices of transport once, with at
// most concurrency outstanding: through a fresh coaps:// transport, a
// handshake and a probe each.
func Once(ctx context.Context, tr agent.Transport, fleet *devicesim.Fleet, transport string, concurrency int) (Count, error) {
	devs := healthyDevices(fleet, transport)
	c, firstErr := work(ctx, ctx, concurrency, func(n int) (int, bool) { return n, n < len(devs) }, tagProbe(tr, devs))
	if c.Errors > 0 {
		return c, fmt.Errorf("simbench: %d of %d first probes failed, the first with: %v", c.Errors, len(devs), firstErr)
	}
	return c, ctx.Err()
}

// Probe measures READ:SETTINGS?TAG round trips through tr against the
// fleet's healthy devices of transport for d, with at most concurrency
// outstanding. A device's refusal counts as an error.
func Probe(ctx context.Context, tr agent.Transport, fleet *devicesim.Fleet, transport string, d time.Duration, concurrency int) (Count, error) {
	devs := healthyDevices(fleet, transport)
	return Drive(ctx, d, concurrency, len(devs), tagProbe(tr, devs))
}
