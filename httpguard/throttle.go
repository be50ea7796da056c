package httpguard

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of ThrottleOptions.
const (
	DefaultFailures  = 10              // failed authentications an address may make at once
	DefaultRefill    = 5 * time.Second // one more allowed per Refill after that
	DefaultAddresses = 10000           // addresses remembered at most
)

// ThrottleOptions configure a Throttle. Zero values take the defaults.
type ThrottleOptions struct {
	Failures  int           // burst of failed authentications allowed per address
	Refill    time.Duration // one failure more allowed per Refill
	Addresses int           // addresses remembered; the longest unseen are forgotten first
	Now       func() time.Time
	Logger    *slog.Logger
}

// Throttle limits failed authentications per client address with a token
// bucket per address (golang.org/x/time/rate): each answer 401 takes a
// token; an address with no token left is answered 429 with Retry-After
// until one refills. Addresses that never fail cost nothing.
type Throttle struct {
	o       ThrottleOptions
	mu      sync.Mutex
	addrs   map[string]*bucket
	refused atomic.Int64
	failed  atomic.Int64
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// NewThrottle returns a throttle with o's limits.
func NewThrottle(o ThrottleOptions) *Throttle {
	if o.Failures <= 0 {
		o.Failures = DefaultFailures
	}
	if o.Refill <= 0 {
		o.Refill = DefaultRefill
	}
	if o.Addresses <= 0 {
		o.Addresses = DefaultAddresses
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Throttle{o: o, addrs: make(map[string]*bucket)}
}

// Blocked reports whether addr has no failure left, and how long until it
// has one.
func (t *Throttle) Blocked(addr string) (time.Duration, bool) {
	now := t.o.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.addrs[addr]
	if b == nil {
		return 0, false
	}
	if tokens := b.lim.TokensAt(now); tokens < 1 {
		return time.Duration((1 - tokens) * float64(t.o.Refill)), true
	}
	return 0, false
}

// Failed records a failed authentication from addr.
func (t *Throttle) Failed(addr string) {
	now := t.o.Now()
	t.failed.Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.addrs[addr]
	if b == nil {
		if len(t.addrs) >= t.o.Addresses {
			t.forgetLocked(now)
		}
		b = &bucket{lim: rate.NewLimiter(rate.Every(t.o.Refill), t.o.Failures)}
		t.addrs[addr] = b
	}
	b.seen = now
	if !b.lim.AllowN(now, 1) {
		t.o.Logger.Warn("httpguard: too many failed authentications; throttling the address", "addr", addr)
	}
}

// forgetLocked drops the addresses whose allowance has refilled, and if
// none has, the one unseen the longest.
func (t *Throttle) forgetLocked(now time.Time) {
	var oldest string
	for a, b := range t.addrs {
		if b.lim.TokensAt(now) >= float64(t.o.Failures) {
			delete(t.addrs, a)
			continue
		}
		if oldest == "" || b.seen.Before(t.addrs[oldest].seen) {
			oldest = a
		}
	}
	if len(t.addrs) >= t.o.Addresses && oldest != "" {
		delete(t.addrs, oldest)
	}
}

// Stats are a throttle's counters since it was made.
type Stats struct {
	Failed  int64 // answers 401
	Refused int64 // requests answered 429 without running the handler
}

// Stats returns the counters.
func (t *Throttle) Stats() Stats {
	return Stats{Failed: t.failed.Load(), Refused: t.refused.Load()}
}

// Wrap answers 429 to a throttled address before next runs, and counts
// every 401 that next answers as a failed authentication.
func (t *Throttle) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := ClientAddr(r)
		if wait, blocked := t.Blocked(addr); blocked {
			t.refused.Add(1)
			secs := int(math.Ceil(wait.Seconds()))
			if secs < 1 {
				secs = 1
			}
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_ = json.NewEncoder(w).Encode(struct {
				Error string `json:"error"`
			}{fmt.Sprintf("too many failed authentications from %s: try again in %d s", addr, secs)})
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == http.StatusUnauthorized {
			t.Failed(addr)
		}
	})
}

// statusWriter remembers the status of an answer. Unwrap lets
// http.ResponseController reach the connection (deadlines, flushing).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush passes flushes through for handlers that assert http.Flusher.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
