package notify

import (
	"context"
	"sync"
	"testing"
	"time"
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

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
