package grouprestore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// Options wire an Engine to its stores and transports.
type Options struct {
	JournalPath string // the job journal (bbolt), as catalog.Init created it
	// CreateJournal creates the journal when missing (tests, tools with no
	// installation); otherwise a missing journal is a *catalog.MissingError.
	CreateJournal bool
	Catalog       Catalog   // backed-up pieces, snapshots, restore history
	Directory     Directory // device groups
	// Transports carry requests by identifier scheme ("mqtt", "coap"); the
	// entry "" serves identifiers without a scheme.
	Transports map[string]agent.Transport
	Logger     *slog.Logger
	// IdentityKeys are the tag keys a device's live tag must keep from its
	// registered tag, for jobs whose Spec names none; empty: manufacturer,
	// product and model (tagmatch.DefaultIdentityKeys).
	IdentityKeys []string
	// StorageRetry bounds the retries of a write that failed for want of
	// space or a failing disk, while its job is paused (see IsStorageError).
	StorageRetry StorageRetry
	// Now stamps the pieces a job stores (backups, snapshots); nil is
	// time.Now. A server driven by a test clock passes that clock's Now.
	Now func() time.Time
}

// Engine runs jobs. Create one per installation with New; Close it to stop
// running jobs, which stay resumable.
type Engine struct {
	journal    *journal
	cat        Catalog
	dir        Directory
	transports map[string]agent.Transport
	log        *slog.Logger

	ctx    context.Context // the engine's lifetime; jobs run under it
	cancel context.CancelFunc
	wg     sync.WaitGroup

	store    *batcher[NewPiece, Piece]
	presence *presence

	identity []string // Options.IdentityKeys, checked
	now      func() time.Time
	retry    StorageRetry
	stats    stats

	mu   sync.Mutex
	jobs map[string]*Job
}

// Errors the engine returns, checked with errors.Is.
var (
	ErrNoJob       = errNoJob
	ErrJobFinished = errors.New("job has already ended")
	ErrEmptyGroup  = errors.New("group has no devices")
	// ErrWrongDevice: a device answered with another device id than the one
	// the job addressed (agent-coap.md section 1); the device is failed and
	// nothing is written to it.
	ErrWrongDevice = errors.New("answered by another device")
)

// New opens the journal and returns an engine. Call Resume to continue jobs
// that were running when the last process stopped.
func New(opts Options) (*Engine, error) {
	switch {
	case opts.Catalog == nil:
		return nil, errors.New("grouprestore: no catalog")
	case opts.Directory == nil:
		return nil, errors.New("grouprestore: no directory")
	case len(opts.Transports) == 0:
		return nil, errors.New("grouprestore: no transport")
	}
	identity, err := tagmatch.CheckIdentityKeys(opts.IdentityKeys)
	if err != nil {
		return nil, fmt.Errorf("grouprestore: options: %w", err)
	}
	j, err := openJournal(opts.JournalPath, opts.CreateJournal)
	if err != nil {
		return nil, err
	}
	e := &Engine{journal: j, cat: opts.Catalog, dir: opts.Directory, transports: opts.Transports, log: opts.Logger,
		identity: identity, retry: opts.StorageRetry.withDefaults(), jobs: map[string]*Job{}, now: opts.Now}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.store = newBatcher(1024, func(ps []NewPiece) ([]Piece, error) { return e.cat.Store(e.ctx, ps) })
	e.presence = newPresence()
	for _, t := range opts.Transports {
		if pn, ok := t.(agent.PresenceNotifier); ok {
			pn.OnOnline(e.presence.online)
		}
	}
	return e, nil
}

// Close stops every running job where it stands (each stays resumable in the
// journal) and closes the journal. It does not close the transports.
func (e *Engine) Close() error {
	e.cancel()
	e.wg.Wait()
	e.store.Close()
	return e.journal.Close()
}

// Start plans and starts a job: the plan (every target device) is journaled
// before any device is contacted.
func (e *Engine) Start(ctx context.Context, spec Spec) (*Job, error) {
	if err := spec.Rollout.Validate(); err != nil {
		return nil, err
	}
	spec.Rollout = spec.Rollout.withDefaults()
	if err := e.identityKeys(&spec); err != nil {
		return nil, err
	}
	rec := JobRecord{ID: newJobID(), Spec: spec, State: JobRunning, Created: time.Now().UnixMilli()}
	plan, err := e.plan(ctx, &rec)
	if err != nil {
		return nil, err
	}
	rec.Total = len(plan)
	rec.Updated = rec.Created
	if err := e.journal.create(rec, plan); err != nil {
		return nil, err
	}
	e.log.Info("job started", "job", rec.ID, "kind", spec.Kind, "source", spec.Source, "target", spec.Target, "devices", len(plan))
	return e.launch(rec, plan, false)
}

// plan resolves a spec to its devices and, for a restore, freezes the candidates.
func (e *Engine) plan(ctx context.Context, rec *JobRecord) ([]DeviceOutcome, error) {
	spec := rec.Spec
	if _, err := compileProfile(spec); err != nil {
		return nil, err
	}
	switch spec.Kind {
	case KindRestore:
		if err := e.freezeCandidates(ctx, rec); err != nil {
			return nil, err
		}
		return e.restoreTargets(ctx, spec)
	case KindBackup:
		if spec.Target == "" {
			return nil, errors.New("a backup needs the name of the backup group to store into")
		}
		return e.members(ctx, spec.Source, spec.Identity)
	case KindUndo:
		return e.undoPlan(spec.Source)
	case KindDrift:
		return e.driftPlan(ctx, rec)
	}
	return nil, fmt.Errorf("unknown job kind %q", spec.Kind)
}

func (e *Engine) members(ctx context.Context, group string, identity []string) ([]DeviceOutcome, error) {
	ts, err := e.dir.Members(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("device group %q: %w", group, err)
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("device group %q: %w", group, ErrEmptyGroup)
	}
	plan := make([]DeviceOutcome, len(ts))
	for i, t := range ts {
		if _, ok := e.transportFor(t.Ident.Scheme); !ok {
			return nil, fmt.Errorf("device %s: no transport for %q identifiers", t.ID, t.Ident.Scheme)
		}
		plan[i] = DeviceOutcome{Device: t.ID, Ident: settingsID(t.Ident, agent.MethodRead, agent.LocWrite).String(), State: Pending,
			Identity: tagmatch.Identity(t.Tag, identity)}
	}
	return plan, nil
}

// undoPlan targets every device a restore job wrote to, with its snapshot as
// the one piece it may receive: those it restored, and those whose write was
// sent but not verified (a wrong acknowledgement, a timeout after sending, a
// stop mid-write), which may hold some or all of the new settings. A device
// that refused the write (Rejected) changed nothing (agent-protocol.md
// section 6) and is left alone.
func (e *Engine) undoPlan(jobID string) ([]DeviceOutcome, error) {
	rec, devs, err := e.journal.load(jobID)
	if err != nil {
		return nil, err
	}
	if rec.Spec.Kind != KindRestore && rec.Spec.Kind != KindUndo {
		return nil, fmt.Errorf("job %s is a %s; only restores can be undone", jobID, rec.Spec.Kind)
	}
	var plan []DeviceOutcome
	for _, d := range devs {
		if wroteTo(d) {
			plan = append(plan, DeviceOutcome{Device: d.Device, Ident: d.Ident, State: Pending, Piece: d.Snapshot, Identity: d.Identity})
		}
	}
	if len(plan) == 0 {
		return nil, fmt.Errorf("job %s wrote to no device, so there is nothing to undo", jobID)
	}
	return plan, nil
}

// wroteTo reports whether a restore may have changed a device's settings: its
// snapshot was taken and its write intent journaled (so the write may have
// been sent), and the device did not refuse it.
func wroteTo(d DeviceOutcome) bool {
	return d.Snapshot != "" && d.State != Rejected && d.State != Pending
}

func (e *Engine) transportFor(scheme string) (agent.Transport, bool) {
	t, ok := e.transports[scheme]
	return t, ok
}

// launch runs a journaled job in the background; resumed says an earlier
// process ran it.
func (e *Engine) launch(rec JobRecord, devs []DeviceOutcome, resumed bool) (*Job, error) {
	j := &Job{id: rec.ID, spec: rec.Spec, e: e, start: time.Now(), rec: rec, devs: devs,
		counts: map[State]int{}, finished: make(chan struct{}), stopCh: make(chan struct{})}
	for _, d := range devs {
		if d.State.Final() {
			j.done++
			j.counts[d.State]++
		}
	}
	if rec.State == JobPaused {
		j.paused, j.resume = true, make(chan struct{})
	}
	r, err := newRun(e, j, rec, resumed)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.jobs[rec.ID] = j
	e.mu.Unlock()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		r.run(e.ctx)
	}()
	return j, nil
}

// Resume continues every job the journal says was running or paused.
func (e *Engine) Resume(ctx context.Context) ([]*Job, error) {
	recs, err := e.journal.jobs()
	if err != nil {
		return nil, err
	}
	var out []*Job
	for _, r := range recs {
		if r.State.Final() {
			continue
		}
		e.mu.Lock()
		_, running := e.jobs[r.ID]
		e.mu.Unlock()
		if running {
			continue
		}
		rec, devs, err := e.journal.load(r.ID)
		if err != nil {
			return out, err
		}
		e.log.Info("job resumed", "job", rec.ID, "kind", rec.Spec.Kind, "devices", len(devs))
		j, err := e.launch(rec, devs, true)
		if err != nil {
			return out, fmt.Errorf("resume job %s: %w", rec.ID, err)
		}
		out = append(out, j)
	}
	return out, nil
}

// Job returns a job by id: the running one, or a finished one from the journal.
func (e *Engine) Job(id string) (*Job, error) {
	e.mu.Lock()
	j, ok := e.jobs[id]
	e.mu.Unlock()
	if ok {
		return j, nil
	}
	rec, devs, err := e.journal.load(id)
	if err != nil {
		return nil, err
	}
	j = &Job{id: rec.ID, spec: rec.Spec, e: e, start: time.UnixMilli(rec.Created), rec: rec, devs: devs,
		counts: map[State]int{}, finished: make(chan struct{}), stopCh: make(chan struct{})}
	for _, d := range devs {
		if d.State.Final() {
			j.done++
			j.counts[d.State]++
		}
	}
	if rec.State.Final() {
		close(j.finished)
	}
	return j, nil
}

// Jobs lists every job in the journal, newest first.
func (e *Engine) Jobs() ([]JobRecord, error) { return e.journal.jobs() }

func newJobID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "j" + time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}
