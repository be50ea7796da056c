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
)

// Options wire an Engine to its stores and transports.
type Options struct {
	JournalPath string    // the job journal (bbolt); created if missing
	Catalog     Catalog   // backed-up pieces, snapshots, restore history
	Directory   Directory // device groups
	// Transports carry requests by identifier scheme ("mqtt", "coap"); the
	// entry "" serves identifiers without a scheme.
	Transports map[string]agent.Transport
	Logger     *slog.Logger
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

	mu   sync.Mutex
	jobs map[string]*Job
}

// Errors the engine returns, checked with errors.Is.
var (
	ErrNoJob       = errNoJob
	ErrJobFinished = errors.New("job has already ended")
	ErrEmptyGroup  = errors.New("group has no devices")
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
	j, err := openJournal(opts.JournalPath)
	if err != nil {
		return nil, err
	}
	e := &Engine{journal: j, cat: opts.Catalog, dir: opts.Directory, transports: opts.Transports, log: opts.Logger, jobs: map[string]*Job{}}
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
	return e.launch(rec, plan)
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
		return e.members(ctx, spec.Source)
	case KindUndo:
		return e.undoPlan(spec.Source)
	case KindDrift:
		return e.driftPlan(ctx, rec)
	}
	return nil, fmt.Errorf("unknown job kind %q", spec.Kind)
}

func (e *Engine) members(ctx context.Context, group string) ([]DeviceOutcome, error) {
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
		plan[i] = DeviceOutcome{Device: t.ID, Ident: settingsID(t.Ident, agent.MethodRead, agent.LocWrite).String(), State: Pending}
	}
	return plan, nil
}

// undoPlan targets every device a restore job restored, with its snapshot as
// the one piece it may receive.
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
		if d.State == Restored && d.Snapshot != "" {
			plan = append(plan, DeviceOutcome{Device: d.Device, Ident: d.Ident, State: Pending, Piece: d.Snapshot})
		}
	}
	if len(plan) == 0 {
		return nil, fmt.Errorf("job %s restored no device, so there is nothing to undo", jobID)
	}
	return plan, nil
}

func (e *Engine) transportFor(scheme string) (agent.Transport, bool) {
	t, ok := e.transports[scheme]
	return t, ok
}

// launch runs a journaled job in the background.
func (e *Engine) launch(rec JobRecord, devs []DeviceOutcome) (*Job, error) {
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
	r, err := newRun(e, j, rec)
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
		j, err := e.launch(rec, devs)
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
