package server

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/identifiers"
)

// fakeTransport answers from a function; it can announce presence.
var (
	_ agent.Transport        = (*fakeTransport)(nil)
	_ agent.PresenceNotifier = (*fakeTransport)(nil)
	_ agent.Transport        = (*plainTransport)(nil)
)

type fakeTransport struct {
	do     func(identifiers.ID) (*agent.Response, error)
	online func(string)
}

func (f *fakeTransport) Do(_ context.Context, target identifiers.ID, _ *agent.Request) (*agent.Response, error) {
	return f.do(target)
}

func (f *fakeTransport) Close() error { return nil }

func (f *fakeTransport) OnOnline(fn func(string)) { f.online = fn }

func (f *plainTransport) Do(ctx context.Context, t identifiers.ID, r *agent.Request) (*agent.Response, error) {
	return f.fakeTransport.Do(ctx, t, r)
}

func (f *plainTransport) Close() error { return nil }

// plainTransport has no presence.
type plainTransport struct{ fakeTransport *fakeTransport }

func TestInstrumentedTransport(t *testing.T) {
	m := newMetrics()
	fake := &fakeTransport{do: func(id identifiers.ID) (*agent.Response, error) {
		switch id.Address {
		case "refuses":
			return &agent.Response{Err: &agent.Error{Code: agent.CodeRejected}}, nil
		case "slow":
			return nil, fmt.Errorf("probe: %w", agent.ErrTimeout)
		case "gone":
			return nil, agent.ErrUnreachable
		case "odd":
			return nil, errors.New("malformed")
		}
		return &agent.Response{}, nil
	}}
	plain := &plainTransport{fakeTransport: fake}
	ts := m.instrumentTransports(map[string]agent.Transport{"": fake, "mqtt": fake, "mqtts": fake, "coap": plain, "coaps": plain})
	if ts[""] != ts["mqtt"] || ts["mqtt"] != ts["mqtts"] || ts["coap"] != ts["coaps"] {
		t.Fatal("one transport wrapped more than once")
	}
	pn, ok := ts["mqtt"].(agent.PresenceNotifier)
	if !ok {
		t.Fatal("the MQTT wrapper lost PresenceNotifier")
	}
	if _, ok := ts["coap"].(agent.PresenceNotifier); ok {
		t.Fatal("the CoAP wrapper gained a PresenceNotifier")
	}
	called := ""
	pn.OnOnline(func(d string) { called = d })
	fake.online("home1")
	if called != "home1" {
		t.Fatal("presence not forwarded")
	}
	ctx := context.Background()
	for _, addr := range []string{"ok", "ok", "refuses", "slow", "gone", "odd"} {
		_, _ = ts["mqtt"].Do(ctx, identifiers.ReadTag("mqtt", addr, 0), &agent.Request{})
	}
	_, _ = ts["coap"].Do(ctx, identifiers.WriteSettings("coap", "ok", 5683), &agent.Request{})
	tests := []struct {
		labels []string
		n      int
	}{
		{[]string{"mqtt", "READ", "TAG", "ok"}, 2},
		{[]string{"mqtt", "READ", "TAG", "refused"}, 1},
		{[]string{"mqtt", "READ", "TAG", "timeout"}, 1},
		{[]string{"mqtt", "READ", "TAG", "unreachable"}, 1},
		{[]string{"mqtt", "READ", "TAG", "error"}, 1},
		{[]string{"coap", "WRITE", "TAG+SETTINGS", "ok"}, 1},
	}
	text := metricsText(t, m)
	for _, tt := range tests {
		t.Run(strings.Join(tt.labels, "/"), func(t *testing.T) {
			want := fmt.Sprintf("fleetvault_transport_request_seconds_count{location=%q,method=%q,result=%q,transport=%q} %d", tt.labels[2], tt.labels[1], tt.labels[3], tt.labels[0], tt.n)
			if !strings.Contains(text, want) {
				t.Fatalf("no %s in\n%s", want, grepLines(text, "fleetvault_transport_request_seconds_count"))
			}
		})
	}
	if n := strings.Count(text, "fleetvault_transport_request_seconds_count{"); n != len(tests) {
		t.Fatalf("%d series, want %d", n, len(tests))
	}
}

// metricsText renders a registry in the Prometheus text format.
func metricsText(t *testing.T, m *metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

func TestOutcomeCounter(t *testing.T) {
	m := newMetrics()
	seen := map[grouprestore.State]int{}
	m.addOutcomes("restore", seen, map[grouprestore.State]int{grouprestore.Restored: 3, grouprestore.Writing: 2})
	m.addOutcomes("restore", seen, map[grouprestore.State]int{grouprestore.Restored: 5, grouprestore.NoMatch: 1})
	m.addOutcomes("restore", seen, map[grouprestore.State]int{grouprestore.Restored: 5, grouprestore.NoMatch: 1})
	text := grepLines(metricsText(t, m), "fleetvault_device_outcomes_total{")
	want := "fleetvault_device_outcomes_total{kind=\"restore\",state=\"no-match\"} 1\nfleetvault_device_outcomes_total{kind=\"restore\",state=\"restored\"} 5"
	if text != want {
		t.Fatalf("got\n%s\nwant\n%s", text, want)
	}
}
