package service

import (
	"github.com/fleetvault/fleetvault/notify"
)

// EventSink receives what people must be told about: a job failed, a
// device missed its RPO, a certification reminder, refusal or lapse. The
// service and the loops of serve call Event; the sink decides who is told
// and how (per-user preferences, email, webhooks, digests). Event must not
// block: a sink queues and delivers off the caller's path.
type EventSink interface {
	Event(e notify.Event)
}

// Events is the installation's event sink (Options.Events); never nil.
func (s *Service) Events() EventSink { return s.events }

// emit hands e to the installation's sink.
func (s *Service) emit(e notify.Event) { s.events.Event(e) }

// discardEvents is the sink when none is given: events are logged, not
// delivered.
type discardEvents struct{ s *Service }

func (d discardEvents) Event(e notify.Event) {
	d.s.log.Debug("event not delivered: no notifications configured", "kind", e.Kind, "device", e.Device, "job", e.Job, "backup", e.Backup)
}
