package servicetest

import (
	"sync"

	"github.com/fleetvault/fleetvault/notify"
)

// Events keeps every event it is given: an event sink (service.EventSink)
// for tests that check what would be told, without delivering anything.
type Events struct {
	mu  sync.Mutex
	all []notify.Event
}

// Event keeps e.
func (r *Events) Event(e notify.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, e)
}

// Of returns the events of kind kept so far, oldest first.
func (r *Events) Of(kind notify.Kind) []notify.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []notify.Event
	for _, e := range r.all {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// Take returns every event kept so far and forgets them.
func (r *Events) Take() []notify.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.all
	r.all = nil
	return out
}
