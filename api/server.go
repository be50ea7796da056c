package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/service"
)

// Options are what the API serves. Catalog and Engine are required.
type Options struct {
	Catalog *catalog.Catalog
	Engine  *grouprestore.Engine
	Tokens  *service.Tokens // nil: every request under /api/v1 is refused 401

	BrokerURL string       // shown by /healthz
	Metrics   http.Handler // serves /metrics; nil answers 404
	// OnJob is called with every job the API starts (the server's metrics
	// count its outcomes); nil does nothing.
	OnJob func(*grouprestore.Job)

	Logger *slog.Logger
}

// API is the HTTP API of one installation. Its handlers are thin: they
// decode a request, call the catalog or the engine, and encode the answer.
type API struct {
	Catalog *catalog.Catalog
	Engine  *grouprestore.Engine

	tokens    *service.Tokens
	brokerURL string
	metrics   http.Handler
	onJob     func(*grouprestore.Job)
	log       *slog.Logger
	started   time.Time
	ctx       context.Context // ends event streams
}

// New returns the API. Event streams (GET /jobs/{id}/events) end when ctx
// is cancelled, so a server's Shutdown need not wait for them.
func New(ctx context.Context, opts Options) *API {
	a := &API{Catalog: opts.Catalog, Engine: opts.Engine, tokens: opts.Tokens, brokerURL: opts.BrokerURL,
		metrics: opts.Metrics, onJob: opts.OnJob, log: opts.Logger, started: time.Now(), ctx: ctx}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.onJob == nil {
		a.onJob = func(*grouprestore.Job) {}
	}
	return a
}
