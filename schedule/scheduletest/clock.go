package scheduletest

import (
	"sync"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/schedule"
)

// Clock is a schedule.Clock that moves only when the test says so. The loop
// sleeps by calling After; the test waits for that (WaitSleeping) and then
// moves time to the end of the sleep (Wake) or by any amount (Advance).
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	pending *sleeper // the most recent After not yet fired
	sleeps  int      // After calls so far
}

type sleeper struct {
	until time.Time
	ch    chan time.Time
}

var _ schedule.Clock = (*Clock)(nil)

// NewClock returns a clock standing at now.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After returns a channel that receives when the clock reaches now+d. Only
// the latest call counts: the loop has one sleep at a time, and an earlier
// one it abandoned (woken by something else) is dropped.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps++
	s := &sleeper{until: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		c.pending = nil // an earlier sleep is abandoned all the same
		s.ch <- c.now
		return s.ch
	}
	c.pending = s
	return s.ch
}

// Sleeps counts the After calls so far. A test that wakes the sleeper by
// other means (a loop's Set) waits for this count to grow before trusting
// Sleeping: until then the abandoned sleep is still the pending one.
func (c *Clock) Sleeps() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sleeps
}

// Sleeping reports whether someone sleeps on the clock, and until when.
func (c *Clock) Sleeping() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil {
		return time.Time{}, false
	}
	return c.pending.until, true
}

// WaitSleeping polls (real time, up to timeout) until someone sleeps on the
// clock and returns until when; it fails the test on timeout.
func (c *Clock) WaitSleeping(t testing.TB, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if until, ok := c.Sleeping(); ok {
			return until
		}
		if time.Now().After(deadline) {
			t.Fatalf("scheduletest: nobody slept on the clock within %v (clock at %v)", timeout, c.Now())
		}
		time.Sleep(time.Millisecond)
	}
}

// Advance moves the clock by d and wakes the sleeper if its time came.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	if s := c.pending; s != nil && !s.until.After(c.now) {
		c.pending = nil
		s.ch <- c.now
	}
}

// Wake waits for the sleeper and moves the clock to the end of its sleep,
// waking it. It returns the new time.
func (c *Clock) Wake(t testing.TB, timeout time.Duration) time.Time {
	t.Helper()
	until := c.WaitSleeping(t, timeout)
	c.Advance(until.Sub(c.Now()))
	return until
}
