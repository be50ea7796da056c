package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/service"
)

// Options are what the API serves. Service and Engine are required.
type Options struct {
	Service *service.Service     // every operation, authorized
	Engine  *grouprestore.Engine // for /healthz's count of running jobs
	Tokens  *service.Tokens      // nil: every request under /api/v1 is refused 401

	BrokerURL string       // shown by /healthz
	Metrics   http.Handler // serves /metrics; nil answers 404
	// MetricsOpen serves /metrics without a token to every address; by
	// default only loopback clients need none, others a token of an admin
	// or an operator.
	MetricsOpen bool

	Logger *slog.Logger
}

// API is the HTTP API of one installation. Its handlers are thin: they
// authenticate the caller, decode the request, call the service as the
// caller and encode the answer.
type API struct {
	svc         *service.Service
	engine      *grouprestore.Engine
	tokens      *service.Tokens
	brokerURL   string
	metrics     http.Handler
	metricsOpen bool
	log         *slog.Logger
	started     time.Time
	ctx         context.Context // ends event streams
}

// New returns the API. Event streams (GET /jobs/{id}/events) end when ctx
// is cancelled, so a server's Shutdown need not wait for them.
func New(ctx context.Context, opts Options) *API {
	a := &API{svc: opts.Service, engine: opts.Engine, tokens: opts.Tokens, brokerURL: opts.BrokerURL,
		metrics: opts.Metrics, metricsOpen: opts.MetricsOpen, log: opts.Logger, started: time.Now(), ctx: ctx}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	return a
}
