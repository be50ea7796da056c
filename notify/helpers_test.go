package notify

import (
	"context"
	"sync"
)

// recorder is a Recorder in memory.
type recorder struct {
	mu sync.Mutex
	us []Undeliverable
}

func (r *recorder) RecordUndeliverable(_ context.Context, u Undeliverable) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.us = append(r.us, u)
	return nil
}

func (r *recorder) all() []Undeliverable {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Undeliverable(nil), r.us...)
}
