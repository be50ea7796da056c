package schedule

import "time"

// Clock is the loop's source of time. Now returns the current time; After
// returns a channel that receives once d has passed. Tests give the loop a
// clock they advance by hand (package scheduletest).
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

var _ Clock = SystemClock{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
