// Package brokertest starts MQTT brokers for tests: the embedded broker on a
// loopback port, or a real Mosquitto configured with the example files that
// Fleetvault ships (examples/mosquitto).
package brokertest

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fleetvault/fleetvault/broker"
)

// Start starts an embedded broker on 127.0.0.1:0 with creds and closes it
// when the test ends. Its URL is URL(b). Warnings and errors go to the test log.
func Start(t testing.TB, creds broker.Credentials) *broker.Broker {
	t.Helper()
	return StartOptions(t, broker.Options{Credentials: creds})
}

// StartOptions is Start with more options; TCPAddr defaults to 127.0.0.1:0
// and Logger to the test log.
func StartOptions(t testing.TB, opts broker.Options) *broker.Broker {
	t.Helper()
	if opts.TCPAddr == "" {
		opts.TCPAddr = "127.0.0.1:0"
	}
	tw := &testWriter{t: t}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(tw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	b, err := broker.New(opts)
	if err != nil {
		t.Fatalf("brokertest: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := b.Start(ctx); err != nil {
		cancel()
		t.Fatalf("brokertest: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := b.Close(); err != nil {
			t.Errorf("brokertest: %v", err)
		}
		tw.done.Store(true) // t.Log after the test has ended would panic
	})
	return b
}

// URL returns the broker's plain TCP address as mqtt://127.0.0.1:port, the
// form paho and Fleetvault's broker.url take.
func URL(b *broker.Broker) string {
	a := b.Addr()
	if a == nil {
		return ""
	}
	return "mqtt://" + a.String()
}

// Credentials hashes the given passwords (name → password) into static
// credentials: devices get RoleDevice, servers RoleServer.
func Credentials(t testing.TB, devices, servers map[string]string) broker.StaticCredentials {
	t.Helper()
	c := broker.StaticCredentials{}
	add := func(m map[string]string, role broker.Role) {
		for name, pw := range m {
			h, err := broker.HashPassword(pw)
			if err != nil {
				t.Fatalf("brokertest: %v", err)
			}
			c[name] = broker.Identity{Name: name, Role: role, PasswordHash: h}
		}
	}
	add(devices, broker.RoleDevice)
	add(servers, broker.RoleServer)
	return c
}

// testWriter sends log lines to t.Log, so they show with the failing test.
type testWriter struct {
	t    testing.TB
	done atomic.Bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}
