package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/notify"
)

// Options configure a Sink.
type Options struct {
	Catalog *catalog.Catalog // required
	// Email is the SMTP channel's settings; nil turns email off (webhooks
	// still work).
	Email *notify.EmailOptions
	// WebhookTimeout bounds one webhook request (0: 30 s).
	WebhookTimeout time.Duration
	// DigestHour is the hour of the day (UTC, 0-23) digests are sent.
	DigestHour int
	// Retries: tries per delivery and the backoff between them (see
	// notify.Options; zero values take its defaults).
	Attempts            int
	BaseDelay, MaxDelay time.Duration
	// QueueSize bounds the events waiting for Run (0: 10000).
	QueueSize int
	// Tick is how often Run looks at the clock for the digest hour and the
	// daily pruning of history (0: a minute).
	Tick   time.Duration
	Now    func() time.Time // nil: time.Now
	Logger *slog.Logger
}

// Stats counts what the sink did since New.
type Stats struct {
	notify.Stats
	Dropped uint64 // events dropped because the queue was full
}

// Sink routes events to people (service.EventSink) and delivers them.
type Sink struct {
	opts     Options
	cat      *catalog.Catalog
	log      *slog.Logger
	notifier *notify.Notifier
	events   chan notify.Event
	dropped  atomic.Uint64

	stop     chan struct{} // closed by Close: job watchers end
	stopOnce sync.Once
	jobs     sync.WaitGroup
	mu       sync.Mutex
	watched  map[string]bool // job ids

	created    time.Time // by Options.Now
	nextDigest time.Time // the first digest hour after created
}

// New checks opts and returns a Sink; start it with Run.
func New(opts Options) (*Sink, error) {
	if opts.Catalog == nil {
		return nil, errors.New("dispatch: a catalog is required")
	}
	if opts.DigestHour < 0 || opts.DigestHour > 23 {
		return nil, fmt.Errorf("dispatch: digest hour %d is not an hour of the day (0-23, UTC)", opts.DigestHour)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 10000
	}
	if opts.Tick <= 0 {
		opts.Tick = time.Minute
	}
	if opts.WebhookTimeout <= 0 {
		opts.WebhookTimeout = 30 * time.Second
	}
	s := &Sink{opts: opts, cat: opts.Catalog, log: opts.Logger, events: make(chan notify.Event, opts.QueueSize),
		stop: make(chan struct{}), watched: map[string]bool{}}
	s.created = opts.Now()
	s.nextDigest = digestAfter(s.created, opts.DigestHour)
	var email *notify.Email
	if opts.Email != nil {
		var err error
		if email, err = notify.NewEmail(*opts.Email); err != nil {
			return nil, fmt.Errorf("dispatch: email: %w", err)
		}
	}
	hook, err := notify.NewWebhook(notify.WebhookOptions{Client: &http.Client{Timeout: opts.WebhookTimeout}, Now: opts.Now})
	if err != nil {
		return nil, err
	}
	s.notifier, err = notify.New(notify.Options{Email: email, Webhook: hook, Recorder: s, Logger: opts.Logger,
		Attempts: opts.Attempts, BaseDelay: opts.BaseDelay, MaxDelay: opts.MaxDelay, Now: opts.Now})
	return s, err
}

// EmailOn reports whether an SMTP server is configured.
func (s *Sink) EmailOn() bool { return s.opts.Email != nil }

// Stats returns the counters of the sink and its notifier.
func (s *Sink) Stats() Stats { return Stats{Stats: s.notifier.Stats(), Dropped: s.dropped.Load()} }

// Event queues e for routing; it never blocks (service.EventSink).
func (s *Sink) Event(e notify.Event) {
	select {
	case s.events <- e:
	default:
		s.dropped.Add(1)
		s.log.Warn("notifications: event queue full, event dropped", "kind", e.Kind, "device", e.Device, "job", e.Job, "queue_size", s.opts.QueueSize)
	}
}

// Run routes queued events, delivers notifications, sends the digests at
// the digest hour and prunes the history daily, until ctx ends. Call it
// once.
func (s *Sink) Run(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- s.notifier.Run(ctx) }()
	defer func() { <-done }()
	tick := time.NewTicker(s.opts.Tick)
	defer tick.Stop()
	nextDigest, nextPrune := s.nextDigest, s.created
	for {
		if now := s.opts.Now(); !now.Before(nextPrune) {
			s.pruneHistory(now)
			nextPrune = now.Add(24 * time.Hour)
		}
		if now := s.opts.Now(); !now.Before(nextDigest) {
			if err := s.SendDigests(now); err != nil {
				s.log.Error("notifications: send the digests", "err", err)
			}
			nextDigest = digestAfter(now, s.opts.DigestHour)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e := <-s.events:
			s.route(e)
		case <-tick.C:
		}
	}
}

// Close stops watching jobs and waits for the watchers that are writing.
func (s *Sink) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	s.jobs.Wait()
	return nil
}

// digestAfter is the first digest time (hour:00 UTC) after now.
func digestAfter(now time.Time, hour int) time.Time {
	now = now.UTC()
	t := time.Date(now.Year(), now.Month(), now.Day(), hour, 0, 0, 0, time.UTC)
	if !t.After(now) {
		t = t.AddDate(0, 0, 1)
	}
	return t
}

func (s *Sink) pruneHistory(now time.Time) {
	days, err := s.cat.HistoryRetention()
	if err == nil {
		var n int
		n, err = s.cat.PruneHistory(now.UTC().AddDate(0, 0, -days))
		if n > 0 {
			s.log.Info("history pruned", "records", n, "retention_days", days)
		}
	}
	if err != nil {
		s.log.Error("history: prune", "err", err)
	}
}

// route tells the people e concerns, and counts an RPO miss in the
// history.
func (s *Sink) route(e notify.Event) {
	if e.ID == "" {
		e.ID = notify.NewID()
	}
	if e.Kind == notify.RPOMissed && e.Device != "" {
		day := e.Time.UTC().Format(catalog.DayLayout)
		if err := s.cat.RecordHistory([]catalog.HistoryRecord{{Day: day, Kind: catalog.HistoryBackup, Device: e.Device, RPOMisses: 1}}); err != nil {
			s.log.Error("history: record an RPO miss", "device", e.Device, "err", err)
		}
	}
	people := map[string]bool{}
	if e.Owner != "" {
		people[e.Owner] = true
	}
	unowned := false
	if e.Device != "" {
		d, err := s.cat.Device(e.Device)
		switch {
		case err == nil && d.Owner != "":
			people[d.Owner] = true
		case err == nil || errors.Is(err, catalog.ErrNotFound):
			unowned = true
		}
	}
	if e.Group != "" {
		if g, err := s.cat.Group(e.Group); err == nil && g.Owner != "" {
			people[g.Owner] = true
		}
	}
	if e.Kind == notify.NotCertified || (e.Kind == notify.JobFailed && (unowned || len(people) == 0)) {
		s.addAdmins(people)
	}
	s.tell(sorted(people), e)
}

// addAdmins adds every enabled admin to people.
func (s *Sink) addAdmins(people map[string]bool) {
	us, err := s.cat.Users()
	if err != nil {
		s.log.Error("notifications: list the admins", "err", err)
	}
	for _, u := range us {
		if u.Role == catalog.UserAdmin && !u.Disabled {
			people[u.Name] = true
		}
	}
}

func sorted(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// tell delivers e to each person as their preferences say.
func (s *Sink) tell(people []string, e notify.Event) {
	for _, user := range people {
		if err := s.tellOne(user, e); err != nil {
			s.log.Error("notifications: cannot notify", "user", user, "kind", e.Kind, "event", e.ID, "err", err)
		}
	}
}

func (s *Sink) tellOne(user string, e notify.Event) error {
	p, found, err := s.cat.NotifyPrefs(user)
	if err != nil || !found {
		return err // no preferences: no channel to tell them on
	}
	if !wants(p.Mode, e.Kind) {
		return nil
	}
	targets := targetsOf(p)
	if len(targets) == 0 {
		return nil
	}
	if p.Digest {
		b, err := encodeEvent(e)
		if err != nil {
			return err
		}
		return s.cat.AppendDigest(user, b)
	}
	return s.notifier.Notify(e, targets...)
}

// wants reports whether a person with mode is told about an event of kind.
func wants(mode string, kind notify.Kind) bool {
	switch mode {
	case catalog.NotifyAlways:
		return true
	case catalog.NotifyOnFailure:
		return kind != notify.JobCompleted
	}
	return false
}

// targetsOf are a person's channels.
func targetsOf(p catalog.NotifyPrefs) []notify.Target {
	var out []notify.Target
	if p.Email != "" {
		out = append(out, notify.Target{Email: p.Email, User: p.User})
	}
	if p.Webhook != "" {
		out = append(out, notify.Target{Webhook: p.Webhook, Secret: []byte(p.WebhookSecret), User: p.User})
	}
	return out
}

// RecordUndeliverable keeps u in the catalog (notify.Recorder).
func (s *Sink) RecordUndeliverable(_ context.Context, u notify.Undeliverable) error {
	msg := ""
	if u.Err != nil {
		msg = u.Err.Error()
	}
	return s.cat.AddUndeliverable(catalog.UndeliverableRecord{Time: u.At, User: u.Target.User, Kind: string(u.Event.Kind), Event: u.Event.ID,
		Target: u.Target.String(), Attempts: u.Attempts, Error: msg})
}

var _ notify.Recorder = (*Sink)(nil)
