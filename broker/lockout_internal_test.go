package broker

import (
	"testing"
	"time"
)

func TestLockoutTable(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	type step struct {
		at      time.Duration
		succeed bool
		locks   time.Duration // the lockout this failure starts; 0 for none
	}
	for _, tc := range []struct {
		name      string
		threshold int
		steps     []step
	}{
		{"third failure locks", 3, []step{{0, false, 0}, {time.Second, false, 0}, {2 * time.Second, false, time.Minute}}},
		{"failures older than the window are forgotten", 3, []step{
			{0, false, 0}, {time.Minute, false, 0}, {12 * time.Minute, false, 0}, {13 * time.Minute, false, 0}, {14 * time.Minute, false, time.Minute}}},
		{"a success forgets failures", 3, []step{{0, false, 0}, {1, false, 0}, {2, true, 0}, {3, false, 0}, {4, false, 0}}},
		{"repeated lockouts double up to the maximum", 1, []step{
			{0, false, time.Minute}, {2 * time.Minute, false, 2 * time.Minute}, {5 * time.Minute, false, 3 * time.Minute},
			{9 * time.Minute, false, 3 * time.Minute}}},
		{"a quiet window forgets the doubling", 1, []step{
			{0, false, time.Minute}, {2 * time.Minute, false, 2 * time.Minute}, {time.Hour, false, time.Minute}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLockout(tc.threshold, 10*time.Minute, time.Minute, 3*time.Minute)
			for i, s := range tc.steps {
				if s.succeed {
					l.succeed("k")
					continue
				}
				d, started := l.fail("k", at(s.at))
				if started != (s.locks != 0) || d != s.locks {
					t.Fatalf("step %d at %v: lockout %v (started %v), want %v", i, s.at, d, started, s.locks)
				}
				if s.locks == 0 {
					continue
				}
				if until, locked := l.lockedUntil("k", at(s.at+s.locks-time.Nanosecond)); !locked || !until.Equal(at(s.at+s.locks)) {
					t.Errorf("step %d: just before the end locked=%v until %v", i, locked, until)
				}
				if _, locked := l.lockedUntil("k", at(s.at+s.locks)); locked {
					t.Errorf("step %d: still locked at the end of the lockout", i)
				}
			}
		})
	}
	t.Run("disabled", func(t *testing.T) {
		l := newLockout(-1, time.Minute, time.Minute, time.Minute)
		for i := range 100 {
			if _, started := l.fail("k", at(time.Duration(i))); started {
				t.Fatal("a disabled table locked out")
			}
		}
	})
}
