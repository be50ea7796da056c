package server

import (
	"context"
	"errors"
	"fmt"
	"github.com/fleetvault/fleetvault/api"
	"github.com/fleetvault/fleetvault/bui"
	"github.com/fleetvault/fleetvault/httpguard"
	"github.com/fleetvault/fleetvault/schedule"
	"github.com/fleetvault/fleetvault/service"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/grouprestore"
)

// apiState is what the HTTP API and the metrics keep in a Server.
type apiState struct {
	tokens  *service.Tokens
	metrics *metrics
	handler http.Handler // the API, once the engine runs

	http     *httpguard.Server
	throttle *httpguard.Throttle
	stopCtx  context.CancelFunc // ends SSE streams on Close
	ctx      context.Context
}

// initAPI prepares the token store and the metrics; Start calls it before
// the engine is built so the transports can be instrumented.
func (s *Server) initAPI(opts Options) {
	path := opts.TokenFile
	if path == "" {
		path = service.TokenFile(opts.MBR)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.api = &apiState{tokens: service.OpenTokens(path), metrics: newMetrics(), ctx: ctx, stopCtx: cancel}
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
		s.onJob(j)
	}
}

// onJob follows a job: its outcomes in the metrics, its end in the
// notifications and the history.
func (s *Server) onJob(j *grouprestore.Job) {
	s.api.metrics.track(j)
	s.Notifications.Job(j)
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
			s.onJob(j)
		}
	}
}

// Handler returns the HTTP API (package api) of the running server, with
// the BUI (package bui) under "/".
func (s *Server) Handler() http.Handler { return s.api.handler }

// serveMetrics serves /metrics, counting jobs started without the API first.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	s.trackRunningJobs()
	promhttp.HandlerFor(s.api.metrics.registry, promhttp.HandlerOpts{ErrorLog: nil}).ServeHTTP(w, r)
}

// startHTTP builds the API and serves it on opts.HTTPAddr when that is set,
// through httpguard: TLS when asked, timeouts, security headers and the
// throttling of failed authentications per client address.
func (s *Server) startHTTP(opts Options) error {
	var events service.EventSink = s.Notifications
	if opts.Events != nil {
		events = opts.Events
	}
	// The service's clock: the certification clock when one was given, else
	// the scheduler's (which stamps backups, so RPO ages agree with it).
	now := s.now
	if _, system := opts.Clock.(schedule.SystemClock); !system && opts.Clock != nil {
		now = opts.Clock.Now
	}
	s.Service = service.New(service.Options{Catalog: s.Catalog, Engine: s.Engine, Tokens: s.api.tokens, OnJob: s.onJob, Logger: s.log,
		Events: events, Channels: s.Notifications, Bench: bench{s}, Now: now, SchedulesChanged: s.reloadSchedules, OnRPO: s.api.metrics.rpo.set})
	a := s.api
	th := opts.HTTPThrottle
	th.Logger = s.log
	a.throttle = httpguard.NewThrottle(th)
	apiHandler := httpguard.Headers(a.throttle.Wrap(api.New(a.ctx, api.Options{
		Service: s.Service, Engine: s.Engine, Tokens: a.tokens, BrokerURL: s.brokerURL,
		Metrics: http.HandlerFunc(s.serveMetrics), MetricsOpen: opts.MetricsOpen, Logger: s.log,
	}).Handler()), httpguard.HeaderOptions{})
	ui, err := bui.New(bui.Options{Service: s.Service, Throttle: a.throttle, Ctx: a.ctx, Logger: s.log})
	if err != nil {
		return err
	}
	// The API keeps its paths; the BUI (the data owner's web view) has the rest.
	mux := http.NewServeMux()
	for _, p := range []string{api.APIPrefix + "/", "/healthz", "/metrics"} {
		mux.Handle(p, apiHandler)
	}
	mux.Handle("/", ui.Handler())
	a.handler = mux
	if opts.HTTPAddr == "" {
		return nil
	}
	hopts := httpguard.Options{Addr: opts.HTTPAddr, CertFile: opts.HTTPCertFile, KeyFile: opts.HTTPKeyFile, ReadTimeout: opts.HTTPReadTimeout,
		BaseContext: func(net.Listener) context.Context { return a.ctx }, Logger: s.log}
	if opts.HTTPSelfSigned {
		hopts.SelfSignedDir = filepath.Dir(opts.MBR)
	}
	hs, err := httpguard.Listen(hopts, a.handler)
	if err != nil {
		return fmt.Errorf("HTTP API: %w (is another server running? choose another address with --http)", err)
	}
	a.http = hs
	go func() {
		if err := hs.Serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("HTTP API stopped", "addr", hs.Addr().String(), "err", err)
		}
	}()
	s.closers = append(s.closers, func() error {
		a.stopCtx() // SSE streams end, so Shutdown need not wait for them
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return hs.Shutdown(ctx)
	})
	s.log.Info("HTTP API listening", "url", hs.URL())
	return nil
}

// HTTPURL is the base URL of the HTTP API (https:// under TLS), or "" when
// it does not listen.
func (s *Server) HTTPURL() string {
	if s.api == nil || s.api.http == nil {
		return ""
	}
	return s.api.http.URL()
}

// HTTPCertFile is the certificate file clients should trust for a
// self-signed API certificate, or "".
func (s *Server) HTTPCertFile() string {
	if s.api == nil || s.api.http == nil {
		return ""
	}
	return s.api.http.CertFile()
}

// HTTPAddr is where the HTTP API listens, or nil when it does not.
func (s *Server) HTTPAddr() net.Addr {
	if s.api == nil || s.api.http == nil {
		return nil
	}
	return s.api.http.Addr()
}

// Tokens returns the installation's API token store.
func (s *Server) Tokens() *service.Tokens {
	if s.api == nil {
		return nil
	}
	return s.api.tokens
}
