package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Target is where one delivery goes: an email address or a webhook URL
// (exactly one of them). A webhook target may carry its own signing secret
// (a user's), else the channel's signs.
type Target struct {
	Email   string `json:"email,omitempty"`
	Webhook string `json:"webhook,omitempty"`
	Secret  []byte `json:"-"`
	// User is whom the delivery is for, kept with an undeliverable one.
	User string `json:"user,omitempty"`
}

func (t Target) String() string {
	if t.Email != "" {
		return "email " + t.Email
	}
	return "webhook " + t.Webhook
}

// Undeliverable is a delivery that did not arrive: its last try failed, a
// receiver refused it for good (4xx), or the notifier stopped first.
type Undeliverable struct {
	Event    Event
	Target   Target
	Attempts int
	Err      error
	At       time.Time
}

// Recorder keeps undeliverable notifications where a person can see them
// (a catalog table, the job journal). RecordUndeliverable must be safe for
// concurrent use; its error is logged.
type Recorder interface {
	RecordUndeliverable(ctx context.Context, u Undeliverable) error
}

// Options configure a Notifier.
type Options struct {
	Email    *Email   // nil: email targets are undeliverable
	Webhook  *Webhook // nil: webhook targets are undeliverable
	Recorder Recorder // required
	Logger   *slog.Logger
	// QueueSize bounds the deliveries waiting for a worker (0: 1000).
	// Notify never blocks: a delivery that finds the queue full is dropped,
	// logged and counted (Stats.Dropped).
	QueueSize int
	Workers   int // deliveries in flight at once (0: 2)
	// Attempts is the number of tries per delivery (0: 6). Between tries
	// the notifier waits BaseDelay (0: 2 s), doubled after each try up to
	// MaxDelay (0: 10 min), each wait drawn at random between half and all
	// of it (jitter), so receivers coming back are not hit all at once.
	Attempts            int
	BaseDelay, MaxDelay time.Duration
	Now                 func() time.Time
}

// Stats counts deliveries since New.
type Stats struct {
	Sent          uint64 // arrived
	Undeliverable uint64 // recorded as undeliverable
	Dropped       uint64 // the queue was full
	Retries       uint64 // tries after a first failure
}

// Notifier renders events and delivers them off the caller's path: Notify
// queues, Run's workers send with retries.
type Notifier struct {
	opts    Options
	log     *slog.Logger
	render  *Renderer
	queue   chan delivery
	sent    atomic.Uint64
	undeliv atomic.Uint64
	dropped atomic.Uint64
	retries atomic.Uint64
	running atomic.Bool
}

type delivery struct {
	event  Event
	msg    Message
	target Target
}

// New checks opts and returns a Notifier; start its workers with Run.
func New(opts Options) (*Notifier, error) {
	if opts.Recorder == nil {
		return nil, fmt.Errorf("notify: new: %w: a Recorder is required", ErrInvalid)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.QueueSize = orDefault(opts.QueueSize, 1000)
	opts.Workers = orDefault(opts.Workers, 2)
	opts.Attempts = orDefault(opts.Attempts, 6)
	if opts.BaseDelay <= 0 {
		opts.BaseDelay = 2 * time.Second
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 10 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r, err := NewRenderer()
	if err != nil {
		return nil, err
	}
	return &Notifier{opts: opts, log: opts.Logger, render: r, queue: make(chan delivery, opts.QueueSize)}, nil
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// Notify renders e and queues one delivery per target; it never blocks. An
// event without an ID gets one. It returns an error only for a bad event or
// target (nothing is queued then); a full queue drops deliveries, which
// are logged and counted in Stats.Dropped.
func (n *Notifier) Notify(e Event, targets ...Target) error {
	if e.ID == "" {
		e.ID = NewID()
	}
	msg, err := n.render.Render(e)
	if err != nil {
		return err
	}
	for _, t := range targets {
		if err := t.check(e); err != nil {
			return err
		}
	}
	for _, t := range targets {
		select {
		case n.queue <- delivery{event: e, msg: msg, target: t}:
		default:
			n.dropped.Add(1)
			n.log.Warn("notify: queue full, notification dropped", "kind", e.Kind, "event", e.ID, "target", t.String(), "queue_size", n.opts.QueueSize)
		}
	}
	return nil
}

func (t Target) check(e Event) error {
	if (t.Email == "") == (t.Webhook == "") {
		return fmt.Errorf("notify: %s event %s: %w: a target needs exactly one of email or webhook", e.Kind, e.ID, ErrInvalid)
	}
	if t.Webhook != "" {
		return checkURL(t.Webhook)
	}
	return nil
}

// SendNow renders e and delivers it to t once, now, on the caller's path:
// no queue, no retry, nothing recorded. It is for a person testing their
// channels, who wants to see at once why a delivery fails.
func (n *Notifier) SendNow(ctx context.Context, e Event, t Target) error {
	if e.ID == "" {
		e.ID = NewID()
	}
	if err := t.check(e); err != nil {
		return err
	}
	msg, err := n.render.Render(e)
	if err != nil {
		return err
	}
	err = n.send(ctx, delivery{event: e, msg: msg, target: t})
	if err == nil {
		n.sent.Add(1)
	}
	return err
}

// Stats returns the counters.
func (n *Notifier) Stats() Stats {
	return Stats{Sent: n.sent.Load(), Undeliverable: n.undeliv.Load(), Dropped: n.dropped.Load(), Retries: n.retries.Load()}
}

// Run delivers queued notifications until ctx ends, then records what is
// still queued or being retried as undeliverable and returns ctx's error.
// Call it once.
func (n *Notifier) Run(ctx context.Context) error {
	if !n.running.CompareAndSwap(false, true) {
		return fmt.Errorf("notify: run: %w: already running", ErrInvalid)
	}
	var wg sync.WaitGroup
	for range n.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case d := <-n.queue:
					n.deliver(ctx, d)
				}
			}
		}()
	}
	wg.Wait()
	for {
		select {
		case d := <-n.queue:
			n.giveUp(ctx, d, 0, fmt.Errorf("notify: stopped before delivery: %w", ctx.Err()))
		default:
			return ctx.Err()
		}
	}
}

// deliver tries d until it arrives, fails for good or runs out of tries.
func (n *Notifier) deliver(ctx context.Context, d delivery) {
	for attempt := 1; ; attempt++ {
		err := n.send(ctx, d)
		if err == nil {
			n.sent.Add(1)
			n.log.Debug("notify: delivered", "kind", d.event.Kind, "event", d.event.ID, "target", d.target.String(), "attempt", attempt)
			return
		}
		if attempt >= n.opts.Attempts || errors.Is(err, errPermanent) || errors.Is(err, ErrInvalid) || ctx.Err() != nil {
			n.giveUp(ctx, d, attempt, err)
			return
		}
		wait := n.backoff(attempt)
		n.retries.Add(1)
		n.log.Warn("notify: delivery failed; will retry", "kind", d.event.Kind, "event", d.event.ID, "target", d.target.String(),
			"attempt", attempt, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			n.giveUp(ctx, d, attempt, fmt.Errorf("notify: stopped while retrying: %w (last error: %v)", ctx.Err(), err))
			return
		case <-time.After(wait):
		}
	}
}

// backoff is the wait after the attempt-th failure: BaseDelay doubled per
// attempt, capped at MaxDelay, then a random point in its upper half.
func (n *Notifier) backoff(attempt int) time.Duration {
	d := n.opts.BaseDelay
	for i := 1; i < attempt && d < n.opts.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, n.opts.MaxDelay)
	return d/2 + rand.N(d/2+1)
}

func (n *Notifier) send(ctx context.Context, d delivery) error {
	switch {
	case d.target.Email != "" && n.opts.Email != nil:
		return n.opts.Email.Send(ctx, []string{d.target.Email}, d.msg)
	case d.target.Webhook != "" && n.opts.Webhook != nil:
		return n.opts.Webhook.SendSigned(ctx, d.target.Webhook, d.target.Secret, d.event, d.msg)
	case d.target.Email != "":
		return fmt.Errorf("notify: %w: email is off (no SMTP server configured) for %s", ErrInvalid, d.target)
	}
	return fmt.Errorf("notify: %w: no channel configured for %s", ErrInvalid, d.target)
}

// giveUp hands d to the Recorder, then counts it, so that a count seen in
// Stats is one the Recorder already holds.
func (n *Notifier) giveUp(ctx context.Context, d delivery, attempts int, err error) {
	u := Undeliverable{Event: d.event, Target: d.target, Attempts: attempts, Err: err, At: n.opts.Now()}
	n.log.Error("notify: undeliverable", "kind", d.event.Kind, "event", d.event.ID, "target", d.target.String(), "attempts", attempts, "err", err)
	if rerr := n.opts.Recorder.RecordUndeliverable(context.WithoutCancel(ctx), u); rerr != nil {
		n.log.Error("notify: cannot record an undeliverable notification", "event", d.event.ID, "target", d.target.String(), "err", rerr)
	}
	n.undeliv.Add(1)
}
