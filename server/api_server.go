package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/grouprestore"
)

// apiState is what the HTTP API and the metrics keep in a Server.
type apiState struct {
	tokens  *Tokens
	metrics *metrics
	started time.Time

	http    *http.Server
	addr    net.Addr
	stopCtx context.CancelFunc // ends SSE streams on Close
	ctx     context.Context
}

// initAPI prepares the token store and the metrics; Start calls it before
// the engine is built so the transports can be instrumented.
func (s *Server) initAPI(opts Options) {
	path := opts.TokenFile
	if path == "" {
		path = TokenFile(opts.MBR)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.api = &apiState{tokens: OpenTokens(path), metrics: newMetrics(), started: time.Now(), ctx: ctx, stopCtx: cancel}
	s.api.metrics.registry.MustRegister(&serverCollector{s: s})
	s.closers = append(s.closers, func() error {
		cancel()
		s.api.metrics.stopTracking()
		return nil
	})
}

// instrument wraps the engine's transports with latency metrics.
func (s *Server) instrument(ts map[string]agent.Transport) map[string]agent.Transport {
	if s.api == nil {
		return ts
	}
	if s.Broker != nil {
		s.api.metrics.registry.MustRegister(s.Broker.Collector())
	}
	return s.api.metrics.instrumentTransports(ts)
}

// trackJobs counts the device outcomes of jobs in the metrics.
func (s *Server) trackJobs(jobs []*grouprestore.Job) {
	if s.api == nil {
		return
	}
	for _, j := range jobs {
		s.api.metrics.track(j)
	}
}

// trackRunningJobs picks up jobs started without the API (by a library
// caller of Engine.Start) so their outcomes are counted from now on.
func (s *Server) trackRunningJobs() {
	recs, err := s.Engine.Jobs()
	if err != nil {
		return
	}
	for _, r := range recs {
		if r.State.Final() {
			continue
		}
		if j, err := s.Engine.Job(r.ID); err == nil {
			s.api.metrics.track(j)
		}
	}
}

// startHTTP serves the API on opts.HTTPAddr when it is set.
func (s *Server) startHTTP(opts Options) error {
	if opts.HTTPAddr == "" || s.api == nil {
		return nil
	}
	ln, err := net.Listen("tcp", opts.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP API: listen on %s: %w (is another server running? choose another address with --http)", opts.HTTPAddr, err)
	}
	a := s.api
	a.addr = ln.Addr()
	a.http = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return a.ctx },
		ErrorLog:          nil,
	}
	go func() {
		if err := a.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("HTTP API stopped", "addr", a.addr.String(), "err", err)
		}
	}()
	s.closers = append(s.closers, func() error {
		a.stopCtx() // SSE streams end, so Shutdown need not wait for them
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.http.Shutdown(ctx); err != nil {
			return a.http.Close()
		}
		return nil
	})
	s.log.Info("HTTP API listening", "addr", a.addr.String())
	return nil
}

// HTTPAddr is where the HTTP API listens, or nil when it does not.
func (s *Server) HTTPAddr() net.Addr {
	if s.api == nil {
		return nil
	}
	return s.api.addr
}

// Tokens returns the installation's API token store.
func (s *Server) Tokens() *Tokens {
	if s.api == nil {
		return nil
	}
	return s.api.tokens
}

// Suggest returns `; did you mean "x"?` for the name in names closest to
// name by edit distance, ignoring case, when one is close enough to be a
// likely typo, else "".
func Suggest(name string, names []string) string {
	best, bestD := "", -1
	for _, n := range names {
		d := editDistance(strings.ToLower(name), strings.ToLower(n))
		if bestD < 0 || d < bestD || (d == bestD && n < best) {
			best, bestD = n, d
		}
	}
	if bestD < 0 || bestD > max(2, len([]rune(name))/3) {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
