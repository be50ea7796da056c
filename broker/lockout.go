package broker

import (
	"sync"
	"time"
)

// maxLockoutKeys bounds a lockout table (about 150 bytes an entry). Past it,
// after a sweep, new keys are not tracked.
const maxLockoutKeys = 1 << 18

// lockout counts failed logins per key (an identity, or an address) and locks
// a key out for a while when it fails threshold times within window. Each
// lockout that follows another within window lasts twice as long, up to max.
// A nil *lockout never locks anything out.
type lockout struct {
	threshold int
	window    time.Duration
	first     time.Duration
	max       time.Duration

	mu        sync.Mutex
	m         map[string]*strikes
	lastSweep time.Time
}

// strikes is what a lockout table knows of one key.
type strikes struct {
	failures int       // in the current window
	since    time.Time // start of the current window
	last     time.Time // last failure
	until    time.Time // locked out until then
	lockouts int       // lockouts in a row, for the doubling
}

// newLockout returns a table, or nil when threshold is negative (disabled).
func newLockout(threshold int, window, first, longest time.Duration) *lockout {
	if threshold < 0 {
		return nil
	}
	return &lockout{threshold: max(threshold, 1), window: window, first: first, max: longest, m: make(map[string]*strikes)}
}

// lockedUntil reports whether key is locked out at now, and until when.
func (l *lockout) lockedUntil(key string, now time.Time) (time.Time, bool) {
	if l == nil {
		return time.Time{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.m[key]
	if s == nil || !now.Before(s.until) {
		return time.Time{}, false
	}
	return s.until, true
}

// fail records a failed login for key at now. When it starts a lockout it
// returns its length and true.
func (l *lockout) fail(key string, now time.Time) (time.Duration, bool) {
	if l == nil {
		return 0, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.m[key]
	if s == nil {
		if len(l.m) >= maxLockoutKeys || now.Sub(l.lastSweep) > l.window {
			l.sweep(now)
		}
		if len(l.m) >= maxLockoutKeys {
			return 0, false
		}
		s = &strikes{since: now}
		l.m[key] = s
	}
	if l.quiet(s, now) {
		*s = strikes{since: now}
	}
	if now.Sub(s.since) > l.window {
		s.failures, s.since = 0, now
	}
	s.failures++
	s.last = now
	if s.failures < l.threshold {
		return 0, false
	}
	d := l.first
	for i := 0; i < s.lockouts && d < l.max; i++ {
		d *= 2
	}
	d = min(d, l.max)
	s.until = now.Add(d)
	s.lockouts++
	s.failures, s.since = 0, now
	return d, true
}

// quiet reports whether s has seen no failure and no lockout for a whole
// window: it is then forgotten, the doubling included.
func (l *lockout) quiet(s *strikes, now time.Time) bool {
	return !now.Before(s.until) && now.Sub(s.last) > l.window && now.Sub(s.until) > l.window
}

// succeed forgets key's failures: it logged in.
func (l *lockout) succeed(key string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	delete(l.m, key)
	l.mu.Unlock()
}

// sweep forgets quiet keys. The caller holds l.mu.
func (l *lockout) sweep(now time.Time) {
	l.lastSweep = now
	for k, s := range l.m {
		if l.quiet(s, now) {
			delete(l.m, k)
		}
	}
}
