package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/notify"
)

// TestChannels sends a test event to each of p's channels once, now, and
// reports per channel whether it arrived (service.ChannelTester).
func (s *Sink) TestChannels(ctx context.Context, p catalog.NotifyPrefs) []apiclient.ChannelResult {
	e := notify.Event{Kind: notify.Test, Time: s.opts.Now(), Owner: p.User}
	out := []apiclient.ChannelResult{}
	for _, t := range targetsOf(p) {
		r := apiclient.ChannelResult{Channel: "email", Target: t.Email}
		if t.Webhook != "" {
			r.Channel, r.Target = "webhook", t.Webhook
		}
		if err := s.notifier.SendNow(ctx, e, t); err != nil {
			r.Error = err.Error()
		} else {
			r.Delivered = true
		}
		out = append(out, r)
	}
	return out
}

// SendDigests sends each person with events waiting one digest of them,
// stamped now, and then forgets those events. A person who meanwhile chose
// never, or has no channel left, gets none and their events are dropped.
func (s *Sink) SendDigests(now time.Time) error {
	batches, err := s.cat.PendingDigests()
	if err != nil {
		return err
	}
	var errs []error
	for _, b := range batches {
		if err := s.sendDigest(now, b); err != nil {
			errs = append(errs, err)
			continue // kept for the next digest
		}
		if err := s.cat.RemoveDigests(b.User, b.Last); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Sink) sendDigest(now time.Time, b catalog.DigestBatch) error {
	p, _, err := s.cat.NotifyPrefs(b.User)
	if err != nil {
		return err
	}
	targets := targetsOf(p)
	if p.Mode == catalog.NotifyNever || len(targets) == 0 {
		s.log.Info("notifications: digest dropped: no channel or mode never", "user", b.User, "events", len(b.Events))
		return nil
	}
	d := notify.Event{Kind: notify.Digest, Time: now, Owner: b.User}
	for _, r := range b.Events {
		e, err := decodeEvent(r)
		if err != nil {
			return fmt.Errorf("dispatch: digest of %s: %w", b.User, err)
		}
		d.Events = append(d.Events, e)
	}
	return s.notifier.Notify(d, targets...)
}

// storedEvent is an event as a digest keeps it: its JSON form, and the RPO
// (which the event's JSON leaves out) in seconds.
type storedEvent struct {
	notify.Event
	RPOSeconds int64 `json:"rpo_seconds,omitempty"`
}

func encodeEvent(e notify.Event) ([]byte, error) {
	return json.Marshal(storedEvent{Event: e, RPOSeconds: int64(e.RPO / time.Second)})
}

func decodeEvent(b []byte) (notify.Event, error) {
	var se storedEvent
	if err := json.Unmarshal(b, &se); err != nil {
		return notify.Event{}, err
	}
	se.Event.RPO = time.Duration(se.RPOSeconds) * time.Second
	return se.Event, nil
}
