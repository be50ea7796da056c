package notifytest

import (
	"testing"
	"time"
)

// WaitFor polls cond until it holds, failing the test after timeout:
// deliveries happen off the caller's path, so tests wait for them, never
// sleep and hope.
func WaitFor(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
