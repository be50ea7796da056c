package grouprestore

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultRescan is how often a continuous restore reads its group's
// membership again when the spec does not say.
const DefaultRescan = 5 * time.Second

// OfflineRetry is how often a continuous restore tries again, at the
// latest, the devices that ended offline, whether or not their transport
// said they came online: a presence event can be lost (the device came
// online while the server restarted, or before the job listened), and a
// CoAP device announces nothing.
const OfflineRetry = 30 * time.Second

// presenceSub receives every device's presence events; when its buffer is
// full it notes that it missed some instead of blocking the transport.
type presenceSub struct {
	ch     chan string
	missed atomic.Bool
}

func (s *presenceSub) send(device string) {
	select {
	case s.ch <- device:
	default:
		s.missed.Store(true)
	}
}

// subscribe returns a subscription to every device's presence events.
func (p *presence) subscribe() (*presenceSub, func()) {
	s := &presenceSub{ch: make(chan string, 1024)}
	p.mu.Lock()
	p.subs[s] = struct{}{}
	p.mu.Unlock()
	return s, func() {
		p.mu.Lock()
		delete(p.subs, s)
		p.mu.Unlock()
	}
}

// stand keeps a continuous restore standing after its plan: members added to
// the group are planned (journaled) and restored, and devices that ended
// offline are tried again when they come online, under the rollout's rate
// and concurrency, until the job is cancelled or the engine closes. A device
// restored stays restored: it is never written twice.
func (r *run) stand(ctx context.Context) {
	sub, unsubscribe := r.e.presence.subscribe()
	defer unsubscribe()
	every := r.j.spec.Rescan
	if every <= 0 {
		every = DefaultRescan
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	index := map[string]int{}
	r.j.mu.Lock()
	for i, d := range r.j.devs {
		index[d.Device] = i
	}
	r.j.mu.Unlock()
	// Members added while the job was down, and devices that ended offline
	// before this subscription could hear them come online.
	r.rescan(ctx, &wg, index, true)
	lastRetry := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.j.stopCh:
			return
		case dev := <-sub.ch:
			if seq, ok := index[dev]; ok {
				r.retry(ctx, &wg, seq)
			}
		case <-tick.C:
			retryOffline := sub.missed.Swap(false) || time.Since(lastRetry) >= OfflineRetry
			if retryOffline {
				lastRetry = time.Now()
			}
			r.rescan(ctx, &wg, index, retryOffline)
		}
	}
}

// rescan plans and starts the group's new members; after missed presence
// events it also retries every device that ended offline.
func (r *run) rescan(ctx context.Context, wg *sync.WaitGroup, index map[string]int, retryOffline bool) {
	if retryOffline {
		for _, seq := range index {
			r.retry(ctx, wg, seq)
		}
	}
	members, err := r.e.members(ctx, r.j.spec.Target, r.j.spec.Identity)
	if err != nil {
		r.e.log.Warn("continuous restore: read the group", "job", r.j.id, "group", r.j.spec.Target, "err", err)
		return
	}
	for _, d := range members {
		if _, ok := index[d.Device]; ok {
			continue
		}
		seq, err := r.j.addDevice(ctx, d)
		if err != nil {
			r.e.log.Error("continuous restore: journal a new member", "job", r.j.id, "device", d.Device, "err", err)
			return
		}
		index[d.Device] = seq
		r.start(ctx, wg, seq)
	}
}

// retry starts a device again if it ended offline.
func (r *run) retry(ctx context.Context, wg *sync.WaitGroup, seq int) {
	if r.j.reopen(ctx, seq) {
		r.start(ctx, wg, seq)
	}
}

// start runs one device under the rollout's rate and concurrency.
func (r *run) start(ctx context.Context, wg *sync.WaitGroup, seq int) {
	if !r.j.gate(ctx) || (r.limiter != nil && r.limiter.Wait(ctx) != nil) || !r.acquire(ctx) {
		return
	}
	if !r.j.gate(ctx) {
		r.release()
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.device(ctx, seq, func() {})
	}()
}

// addDevice journals a new member of a continuous restore and returns its
// place in the plan.
func (j *Job) addDevice(ctx context.Context, d DeviceOutcome) (int, error) {
	j.mu.Lock()
	seq := len(j.devs)
	j.devs = append(j.devs, d)
	j.rec.Total = len(j.devs)
	j.mu.Unlock()
	if err := j.e.journal.record(ctx, j.id, seq, d); err != nil {
		return 0, err
	}
	j.mu.Lock()
	j.persistLocked()
	j.mu.Unlock()
	return seq, nil
}

// reopen puts a device that ended offline back to pending (journaled), and
// reports whether it did.
func (j *Job) reopen(ctx context.Context, seq int) bool {
	j.mu.Lock()
	d := j.devs[seq]
	if d.State != Offline {
		j.mu.Unlock()
		return false
	}
	d.State, d.Reason = Pending, "came online"
	j.devs[seq] = d
	if j.counts[Offline]--; j.counts[Offline] <= 0 {
		delete(j.counts, Offline)
	}
	j.done--
	j.mu.Unlock()
	if err := j.e.journal.record(ctx, j.id, seq, d); err != nil {
		j.e.log.Error("continuous restore: journal a retry", "job", j.id, "device", d.Device, "err", err)
		return false
	}
	return true
}
