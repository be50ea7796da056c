package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fleetvault/fleetvault/apiclient"

	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/grouprestore"
)

// Options are what a Service works on.
type Options struct {
	Catalog *catalog.Catalog     // required
	Engine  *grouprestore.Engine // nil: job operations answer ErrUnprocessable (the CLI's direct mode)
	// Tokens is the installation's API token store, where CreateToken
	// writes; nil refuses CreateToken.
	Tokens *Tokens
	// OnJob is called with every job the service starts (the server's
	// metrics count its outcomes); nil does nothing.
	OnJob func(*grouprestore.Job)
	// Events receives what people must be told about (EventSink); nil logs
	// events without delivering them.
	Events EventSink
	// Bench runs test restores' twins and reads devices' settings back
	// (the server's); nil refuses test restores (the CLI's direct mode).
	Bench TestBench
	// Now is the clock of certification times, schedules and RPOs; nil is
	// time.Now. A server driven by a test clock passes that clock's Now.
	Now func() time.Time
	// SchedulesChanged is called after a schedule is added, replaced or
	// removed (the server's scheduler reloads them); nil does nothing.
	SchedulesChanged func()
	// OnRPO receives every device's RPO status after each CheckRPO (the
	// server's metrics); nil does nothing.
	OnRPO func([]apiclient.RPOStatus)
	// Channels sends test notifications (TestNotifications); nil answers
	// ErrUnprocessable (the CLI's direct mode).
	Channels ChannelTester
	Logger   *slog.Logger
}

// Service is one installation's operations. It is safe for concurrent use.
type Service struct {
	cat      *catalog.Catalog
	tokens   *Tokens
	eng      *grouprestore.Engine
	onJob    func(*grouprestore.Job)
	events   EventSink
	channels ChannelTester
	bench    TestBench
	now      func() time.Time
	log      *slog.Logger
	// dummyHash makes an unknown user's log-on cost a real check (logon.go).
	dummyHash func() string

	schedulesChanged func()
	onRPO            func([]apiclient.RPOStatus)
	rpoMu            sync.Mutex // one CheckRPO at a time, so a miss is told once
}

// New returns the service over opts.Catalog (and opts.Engine).
func New(opts Options) *Service {
	s := &Service{cat: opts.Catalog, tokens: opts.Tokens, eng: opts.Engine, onJob: opts.OnJob, events: opts.Events, channels: opts.Channels, bench: opts.Bench, log: opts.Logger,
		now: opts.Now, schedulesChanged: opts.SchedulesChanged, onRPO: opts.OnRPO, dummyHash: newDummyHash()}
	if s.now == nil {
		s.now = time.Now
	}
	if s.schedulesChanged == nil {
		s.schedulesChanged = func() {}
	}
	if s.onRPO == nil {
		s.onRPO = func([]apiclient.RPOStatus) {}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.events == nil {
		s.events = discardEvents{s}
	}
	if s.onJob == nil {
		s.onJob = func(*grouprestore.Job) {}
	}
	return s
}

// Catalog is the installation's catalog, for what is not an operation
// (health, metrics).
func (s *Service) Catalog() *catalog.Catalog { return s.cat }

// Session is the service as one identity sees it: its methods are the
// operations, authorized for that identity. It has the method set of the
// API's Go client (apiclient.Client), so the CLI can use either.
type Session struct {
	s  *Service
	id Identity
}

// As returns the service acting as id.
func (s *Service) As(id Identity) *Session { return &Session{s: s, id: id} }

// Identity is who the session acts as.
func (ss *Session) Identity() Identity { return ss.id }

// audited runs change, then appends its outcome to the audit log and
// returns only once that entry is on disk. An entry that cannot be written
// is an error even when the change was made: a change must not go unrecorded
// silently.
func (ss *Session) audited(action string, objects []string, change func() error) error {
	err := change()
	e := catalog.AuditEntry{User: ss.id.User, Role: ss.id.Role, Addr: ss.id.Addr, Action: action, Objects: objects, Outcome: outcome(err)}
	if err != nil {
		e.Detail = err.Error()
	}
	if _, aerr := ss.s.cat.AppendAudit(e); aerr != nil {
		ss.s.log.Error("audit: append failed", "action", action, "user", ss.id.User, "err", aerr)
		if err == nil {
			return fmt.Errorf("%s was done but could not be written to the audit log: %w", action, aerr)
		}
	}
	return err
}

// outcome is how the audit log records err.
func outcome(err error) string {
	switch {
	case err == nil:
		return catalog.AuditOK
	case errors.Is(err, ErrUnauthenticated):
		return catalog.AuditUnauthenticated
	case errors.Is(err, ErrForbidden), errors.Is(err, ErrNotFound), errors.Is(err, ErrInvalid), errors.Is(err, ErrConflict):
		return catalog.AuditRefused
	}
	return catalog.AuditFailed
}

// AuditUnauthenticated records a change attempted without valid credentials
// (the API calls it for a refused write), so probing leaves a trace.
func (s *Service) AuditUnauthenticated(addr, action, object string) error {
	_, err := s.cat.AppendAudit(catalog.AuditEntry{Addr: addr, Action: action, Objects: []string{object}, Outcome: catalog.AuditUnauthenticated})
	return err
}

// Audit reads the audit log; only an admin may.
func (ss *Session) Audit(_ context.Context, q apiclient.AuditQuery) ([]catalog.AuditEntry, error) {
	if err := ss.id.requireAdmin("read the audit log"); err != nil {
		return nil, err
	}
	out, err := ss.s.cat.Audit(catalog.AuditQuery{User: q.User, Since: q.Since, Limit: q.Limit})
	if out == nil {
		out = []catalog.AuditEntry{}
	}
	return out, err
}
