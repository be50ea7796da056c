package broker

import (
	"context"
	"log/slog"
)

// quietHandler is the handler mochi logs through. mochi reports routine
// events (listeners attached, a client's connection ending) at info and warn,
// some with an empty message; the broker logs what matters itself (refused
// connections, denied topics), so mochi's info and warn become debug and only
// its errors keep their level.
type quietHandler struct{ h slog.Handler }

var _ slog.Handler = quietHandler{}

func quiet(level slog.Level) slog.Level {
	if level < slog.LevelError {
		return slog.LevelDebug
	}
	return level
}

func (q quietHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return q.h.Enabled(ctx, quiet(level))
}

func (q quietHandler) Handle(ctx context.Context, r slog.Record) error {
	r.Level = quiet(r.Level)
	if r.Message == "" {
		r.Message = "mqtt event"
	}
	return q.h.Handle(ctx, r)
}

func (q quietHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quietHandler{q.h.WithAttrs(attrs)}
}

func (q quietHandler) WithGroup(name string) slog.Handler {
	return quietHandler{q.h.WithGroup(name)}
}

// discard is a handler that drops everything, for a nil Options.Logger.
type discard struct{}

func (discard) Enabled(context.Context, slog.Level) bool  { return false }
func (discard) Handle(context.Context, slog.Record) error { return nil }
func (d discard) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discard) WithGroup(string) slog.Handler           { return d }
