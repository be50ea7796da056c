package grouprestore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/identifiers"
	"github.com/fleetvault/fleetvault/settingsdoc"
	"golang.org/x/time/rate"
)

// run executes one job: waves of devices under the rollout's limits.
type run struct {
	e       *Engine
	j       *Job
	ro      Rollout
	choose  chooser
	spec    Spec
	profile *settingsdoc.Compiled // nil: devices get the backup as it is
	limiter *rate.Limiter
	sem     chan struct{}

	contentMu   sync.Mutex
	content     map[string][]byte                // settings by hash, loaded once per job
	refProfiles map[string]*settingsdoc.Compiled // drift: the profiles of reference jobs

	resumed bool  // an earlier process ran the job: it may have stored pieces
	created int64 // the job's creation, Unix ms
}

// chooser picks the piece a probed device gets, or its final state and why.
type chooser func(ctx context.Context, d DeviceOutcome, resp *agent.Response) (Piece, State, string)

func newRun(e *Engine, j *Job, rec JobRecord, resumed bool) (*run, error) {
	r := &run{e: e, j: j, spec: rec.Spec, ro: rec.Spec.Rollout, content: map[string][]byte{}, sem: make(chan struct{}, rec.Spec.Rollout.Concurrency),
		resumed: resumed, created: rec.Created}
	var err error
	if r.profile, err = compileProfile(rec.Spec); err != nil {
		return nil, err
	}
	if r.ro.Rate > 0 {
		burst := int(r.ro.Rate/10) + 1
		r.limiter = rate.NewLimiter(rate.Limit(r.ro.Rate), burst)
	}
	switch rec.Spec.Kind {
	case KindRestore:
		m, err := newMatcher(rec.Spec.Policy, rec.Candidates)
		if err != nil {
			return nil, err
		}
		choose := restoreChooser(rec.Spec, m)
		r.choose = func(_ context.Context, _ DeviceOutcome, resp *agent.Response) (Piece, State, string) {
			return choose(resp.Tag)
		}
	case KindUndo:
		r.choose = r.chooseSnapshot
	case KindDrift:
		if rec.Spec.Source != "" {
			m, err := newMatcher(rec.Spec.Policy, rec.Candidates)
			if err != nil {
				return nil, err
			}
			r.choose = func(_ context.Context, _ DeviceOutcome, resp *agent.Response) (Piece, State, string) {
				return m.match(resp.Tag)
			}
		}
	}
	return r, nil
}

// run drives the job to its end, or returns early when the engine closes
// (the job then stays resumable).
func (r *run) run(ctx context.Context) {
	j := r.j
	j.mu.Lock()
	total := len(j.devs)
	j.mu.Unlock()
	var all sync.WaitGroup
	next := 0
	for _, size := range r.ro.waves(total) {
		var wave sync.WaitGroup
		end := next + size
		for ; next < end; next++ {
			j.mu.Lock()
			d := j.devs[next]
			j.mu.Unlock()
			if d.State.Final() {
				continue
			}
			if !j.gate(ctx) || (r.limiter != nil && r.limiter.Wait(ctx) != nil) {
				break
			}
			if !r.acquire(ctx) {
				break
			}
			// A cancel, abort or pause may have come while this device
			// waited for a slot: no device starts after one.
			if !j.gate(ctx) {
				r.release()
				break
			}
			all.Add(1)
			wave.Add(1)
			go func(seq int) {
				defer all.Done()
				var once sync.Once
				r.device(ctx, seq, func() { once.Do(wave.Done) })
				once.Do(wave.Done)
			}(next)
		}
		wave.Wait() // devices done or parked offline
		if j.stopped() || ctx.Err() != nil {
			break
		}
	}
	all.Wait()
	if j.spec.Continuous {
		r.stand(ctx)
	}
	if ctx.Err() != nil {
		return // engine closing: leave the job resumable
	}
	r.finish(ctx)
}

func (r *run) acquire(ctx context.Context) bool {
	select {
	case r.sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (r *run) release() { <-r.sem }

// finish skips every device not started, then journals the job's end.
func (r *run) finish(ctx context.Context) {
	j := r.j
	j.mu.Lock()
	stop, reason := j.stop, j.reason
	var skip []int
	for i, d := range j.devs {
		if !d.State.Final() {
			skip = append(skip, i)
		}
	}
	j.mu.Unlock()
	for _, seq := range skip {
		j.mu.Lock()
		d := j.devs[seq]
		j.mu.Unlock()
		why := "not attempted: job " + string(stop)
		if reason != "" {
			why = "not attempted: " + reason
		}
		if d.State == Writing {
			why += " (settings may have been sent before the stop)"
		}
		d.State, d.Reason, d.Time = Skipped, why, time.Now().UnixMilli()
		if err := r.record(ctx, seq, d); err != nil {
			if ctx.Err() != nil {
				return // engine closing: the job stays resumable
			}
			r.e.log.Error("grouprestore: journal skipped device", "job", j.id, "device", d.Device, "err", err)
			stop, reason = JobFailed, fmt.Sprintf("journal write failed: %v; devices not journaled are shown skipped", err)
		}
		j.settle(seq, d)
	}
	r.recordHistory(ctx)
	j.mu.Lock()
	switch {
	case stop != "":
		j.rec.State, j.rec.Reason = stop, reason
	default:
		j.rec.State = JobDone
	}
	j.rec.Updated = time.Now().UnixMilli()
	rec := j.rec
	j.mu.Unlock()
	err := r.durable(ctx, "journal the job's end", func() error { return r.e.journal.putJob(rec) })
	if err != nil && ctx.Err() != nil {
		return // engine closing: the job stays resumable
	}
	j.mu.Lock()
	if err != nil {
		r.e.log.Error("grouprestore: journal the job's end", "job", j.id, "err", err)
		j.rec.State, j.rec.Reason = JobFailed, fmt.Sprintf("journal write failed: %v; the journal may still say the job runs", err)
	}
	p := j.progressLocked()
	j.mu.Unlock()
	close(j.finished)
	r.e.log.Info("job ended", "job", j.id, "state", p.State, "devices", p.Total, "counts", p.Counts, "seconds", p.Elapsed.Seconds())
}

// recordHistory writes the restore history of a restore or undo job, in
// batches; a repeated (job, device) line replaces the earlier one.
func (r *run) recordHistory(ctx context.Context) {
	if r.j.spec.Kind == KindBackup || r.j.spec.Kind == KindDrift {
		return
	}
	devs := r.j.Devices()
	batch := make([]RestoreRecord, 0, 4096)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if err := r.durable(ctx, "record the restore history", func() error { return r.e.cat.RecordRestores(ctx, batch) }); err != nil {
			r.e.log.Error("grouprestore: restore history", "job", r.j.id, "err", err)
		}
		batch = batch[:0]
	}
	for _, d := range devs {
		rec := RestoreRecord{Job: r.j.id, Device: d.Device, Piece: d.Piece, State: d.State, Reason: d.Reason, Time: time.UnixMilli(d.Time)}
		if d.State == Restored {
			rec.Hash = d.Hash // the device acknowledged exactly these settings
		}
		batch = append(batch, rec)
		if len(batch) == cap(batch) {
			flush()
		}
	}
	flush()
}

// device takes one device to a final state. parked is called when the device
// waits offline, so its wave need not wait for it.
func (r *run) device(ctx context.Context, seq int, parked func()) {
	defer r.release()
	r.j.mu.Lock()
	d := r.j.devs[seq]
	r.j.mu.Unlock()
	target, err := identifiers.Parse(d.Ident)
	if err != nil {
		r.final(ctx, seq, d, Failed, "identifier in the plan is invalid: "+err.Error())
		return
	}
	if r.j.spec.Kind == KindBackup {
		r.backup(ctx, seq, d, target, parked)
		return
	}
	if r.j.spec.Kind == KindDrift {
		r.drift(ctx, seq, d, target, parked)
		return
	}
	r.restore(ctx, seq, d, target, parked)
}

// final journals a device's final outcome (durably) and applies the
// rollout's abort thresholds.
func (r *run) final(ctx context.Context, seq int, d DeviceOutcome, s State, reason string) {
	d.State, d.Reason, d.Time = s, reason, time.Now().UnixMilli()
	if err := r.record(ctx, seq, d); err != nil {
		if ctx.Err() == nil {
			r.e.log.Error("grouprestore: journal device outcome", "job", r.j.id, "device", d.Device, "err", err)
			r.j.halt(JobFailed, "journal write failed: "+err.Error())
		}
		return
	}
	r.j.settle(seq, d)
	r.checkThresholds()
}

func (r *run) checkThresholds() {
	j := r.j
	j.mu.Lock()
	failed := j.counts[Failed] + j.counts[Rejected] + j.counts[TagMismatch]
	nomatch := j.counts[NoMatch] + j.counts[Ambiguous]
	done := j.done
	j.mu.Unlock()
	if done == 0 {
		return
	}
	if r.ro.MaxFailureShare > 0 && failed >= max(r.ro.MinFailures, 1) && float64(failed)/float64(done) > r.ro.MaxFailureShare {
		j.halt(JobAborted, fmt.Sprintf("aborted: %d of %d devices failed (%.1f%%), over the %.1f%% threshold", failed, done, 100*float64(failed)/float64(done), 100*r.ro.MaxFailureShare))
	}
	if r.ro.MaxNoMatchShare > 0 && nomatch >= max(r.ro.MinNoMatches, 1) && float64(nomatch)/float64(done) > r.ro.MaxNoMatchShare {
		j.halt(JobAborted, fmt.Sprintf("aborted: %d of %d devices matched no backup (%.1f%%), over the %.1f%% threshold", nomatch, done, 100*float64(nomatch)/float64(done), 100*r.ro.MaxNoMatchShare))
	}
}

// settingsID is the identifier of a settings request to target. It keeps
// the target's broker param, which routes an MQTT request to the device's
// broker shard (docs/spec/identifiers.md section 9.1).
func settingsID(target identifiers.ID, method, location string) identifiers.ID {
	params := []string{agent.ParamSettings}
	if b := target.BrokerParam(); b != "" {
		params = append(params, b)
	}
	return identifiers.ID{Scheme: target.Scheme, Address: target.Address, Port: target.Port, Method: method, Params: params, Location: location}
}

// errOffline marks a device that did not answer within the offline time-to-live.
var errOffline = errors.New("offline")

// call sends one request with retries and backoff. When the device does not
// answer and the rollout has an offline time-to-live, it parks: it gives up its
// concurrency slot, waits for the device to come online (or the next retry
// time), and tries again until the time-to-live has passed.
func (r *run) call(ctx context.Context, d *DeviceOutcome, id identifiers.ID, req *agent.Request, parked func()) (*agent.Response, error) {
	tr, ok := r.e.transportFor(id.Scheme)
	if !ok {
		return nil, fmt.Errorf("no transport for %q identifiers", id.Scheme)
	}
	var deadline time.Time
	for {
		resp, err := r.tries(ctx, d, tr, id, req)
		if err == nil || !unanswered(err) || r.ro.OfflineTTL <= 0 {
			return resp, err
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(r.ro.OfflineTTL)
		}
		if !r.park(ctx, d.Device, deadline, parked) {
			if ctx.Err() == nil && !r.j.stopped() {
				return nil, fmt.Errorf("%w: no answer within the offline time-to-live of %s: %v", errOffline, r.ro.OfflineTTL, err)
			}
			return nil, err
		}
	}
}

// tries makes the first attempt and the rollout's retries.
func (r *run) tries(ctx context.Context, d *DeviceOutcome, tr agent.Transport, id identifiers.ID, req *agent.Request) (*agent.Response, error) {
	backoff := r.ro.Backoff
	for attempt := 0; ; attempt++ {
		d.Attempts++
		// The device's id goes with the request: a transport that
		// authenticates devices (coaps://) needs it for the handshake.
		cctx, cancel := context.WithTimeout(agent.WithDevice(ctx, d.Device), r.ro.Timeout)
		q := *req
		resp, err := tr.Do(cctx, id, &q)
		cancel()
		if err == nil && resp.Device != d.Device {
			// Over CoAP the address is not the device id: an answer from
			// another device (a moved address, a swapped unit) must not count.
			err = fmt.Errorf("%w: the answer from %s came from device %q, not %q; check the resource database's address for %s", ErrWrongDevice, id.HostPort(), resp.Device, d.Device, d.Device)
			resp = nil
		}
		if err == nil && resp.Err != nil && resp.Err.Code == agent.CodeInternal {
			err = resp.Err // a device's internal failure may pass
		}
		if err == nil || !retryable(err) || attempt >= r.ro.Retries || ctx.Err() != nil {
			if err != nil && errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("%w (%s)", agent.ErrTimeout, r.ro.Timeout)
			}
			return resp, err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		backoff *= 2
	}
}

// park waits, without a concurrency slot, until the device comes online, its
// next retry time, or the job stops. It reports whether to try again; the
// caller's next failure after the deadline makes the device offline.
func (r *run) park(ctx context.Context, device string, deadline time.Time, parked func()) bool {
	if !time.Now().Before(deadline) {
		return false
	}
	parked()
	r.release()
	online, stop := r.e.presence.wait(device)
	t := time.NewTimer(min(time.Until(deadline), max(r.ro.OfflineTTL/10, time.Second)))
	select {
	case <-online:
	case <-t.C:
	case <-r.j.stopCh:
	case <-ctx.Done():
	}
	t.Stop()
	stop()
	// Take a slot back unconditionally: every holder gives its slot up within
	// a request timeout, and device's deferred release expects one.
	r.sem <- struct{}{}
	return !r.j.stopped() && ctx.Err() == nil
}

func unanswered(err error) bool {
	return errors.Is(err, agent.ErrTimeout) || errors.Is(err, agent.ErrUnreachable) || errors.Is(err, context.DeadlineExceeded)
}

func retryable(err error) bool {
	var de *agent.Error
	return unanswered(err) || (errors.As(err, &de) && de.Code == agent.CodeInternal)
}

// failure turns a failed exchange into a final state and reason.
func failure(step string, err error, resp *agent.Response) (State, string) {
	switch {
	case err != nil && errors.Is(err, errOffline):
		return Offline, fmt.Sprintf("%s: %v", step, err)
	case err != nil && unanswered(err):
		return Offline, fmt.Sprintf("%s: %v", step, err)
	case err != nil:
		return Failed, fmt.Sprintf("%s: %v", step, err)
	case resp.Err.Code == agent.CodeRejected:
		return Rejected, fmt.Sprintf("%s: the device refused: %s", step, resp.Err.Message)
	default:
		return Failed, fmt.Sprintf("%s: %v", step, resp.Err)
	}
}
