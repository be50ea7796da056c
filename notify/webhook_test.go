package notify

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/notify/notifytest"
)

var hookSecret = []byte("a-webhook-secret-of-32-bytes-....")

func newWebhook(t *testing.T) *Webhook {
	t.Helper()
	w, err := NewWebhook(WebhookOptions{Secret: hookSecret, Client: &http.Client{Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// runNotifier starts n and stops it at the end of the test.
func runNotifier(t *testing.T, n *Notifier) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestWebhookRetries(t *testing.T) {
	tests := []struct {
		name          string
		failFirst     int
		status        int
		attempts      int
		wantRequests  int
		wantDelivered bool
	}{
		{"arrives first time", 0, 0, 4, 1, true},
		{"fails three times, arrives on the fourth", 3, http.StatusServiceUnavailable, 4, 4, true},
		{"429 is retried", 1, http.StatusTooManyRequests, 4, 2, true},
		{"never arrives: undeliverable", 100, http.StatusInternalServerError, 4, 4, false},
		{"404 is not retried", 100, http.StatusNotFound, 4, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := notifytest.StartHook(t, hookSecret, tt.failFirst, tt.status)
			rec := &recorder{}
			n, err := New(Options{Webhook: newWebhook(t), Recorder: rec, Attempts: tt.attempts, BaseDelay: time.Millisecond, MaxDelay: 4 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			runNotifier(t, n)
			e := sampleEvents()["rpo-missed"]
			if err := n.Notify(e, Target{Webhook: h.URL() + "/hook"}); err != nil {
				t.Fatal(err)
			}
			notifytest.WaitFor(t, 30*time.Second, func() bool { s := n.Stats(); return s.Sent+s.Undeliverable == 1 })
			requests, bad, got, ids := h.Snapshot()
			if len(bad) > 0 {
				t.Fatalf("bad requests: %v", bad)
			}
			if requests != tt.wantRequests {
				t.Fatalf("%d requests, want %d", requests, tt.wantRequests)
			}
			if !tt.wantDelivered {
				u := rec.all()
				if len(u) != 1 || u[0].Event.ID != e.ID || u[0].Target.Webhook != h.URL()+"/hook" || u[0].Attempts != tt.wantRequests || u[0].Err == nil {
					t.Fatalf("undeliverable recorded: %+v", u)
				}
				return
			}
			if len(got) != 1 || len(rec.all()) != 0 {
				t.Fatalf("delivered %d, undeliverable %d", len(got), len(rec.all()))
			}
			m := got[0]
			if m["id"] != e.ID || m["kind"] != string(RPOMissed) || m["device"] != e.Device || m["rpo_seconds"] != float64(26*3600) ||
				m["subject"] != "[Fleetvault] RPO missed: home0007-climate" || !strings.Contains(m["text"].(string), "1 day 2 hours") || ids[0] != e.ID {
				t.Fatalf("body %v, delivery id %q", m, ids[0])
			}
		})
	}
}

// TestWebhookTargetSecret: a target's own secret (a user's) signs its
// requests; without one the channel's does; a channel without a secret
// cannot sign for a target without one.
func TestWebhookTargetSecret(t *testing.T) {
	userSecret := []byte("alice-has-her-own-webhook-secret")
	noSecret, err := NewWebhook(WebhookOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		channel  *Webhook
		target   []byte
		verifier []byte
		wantErr  bool
	}{
		{"target's own secret", newWebhook(t), userSecret, userSecret, false},
		{"channel's secret", newWebhook(t), nil, hookSecret, false},
		{"channel without secret, target's own", noSecret, userSecret, userSecret, false},
		{"no secret at all", noSecret, nil, hookSecret, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := notifytest.StartHook(t, tt.verifier, 0, 0)
			n, err := New(Options{Webhook: tt.channel, Recorder: &recorder{}})
			if err != nil {
				t.Fatal(err)
			}
			err = n.SendNow(context.Background(), sampleEvents()["test"], Target{Webhook: h.URL(), Secret: tt.target})
			requests, bad, got, _ := h.Snapshot()
			if tt.wantErr {
				if !errors.Is(err, ErrInvalid) || requests != 0 {
					t.Fatalf("SendNow = %v after %d requests", err, requests)
				}
				return
			}
			if err != nil || len(bad) > 0 || len(got) != 1 {
				t.Fatalf("SendNow = %v; bad %v; got %d", err, bad, len(got))
			}
		})
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"id":"x"}`)
	now := time.Unix(1_800_000_000, 0)
	good := Sign(hookSecret, now, body)
	tests := []struct {
		name   string
		secret []byte
		header string
		body   []byte
		now    time.Time
		ok     bool
	}{
		{"good", hookSecret, good, body, now, true},
		{"a little later", hookSecret, good, body, now.Add(4 * time.Minute), true},
		{"replayed an hour later", hookSecret, good, body, now.Add(time.Hour), false},
		{"other body", hookSecret, good, []byte(`{"id":"y"}`), now, false},
		{"other secret", []byte("another-secret-of-some-length"), good, body, now, false},
		{"empty header", hookSecret, "", body, now, false},
		{"timestamp swapped", hookSecret, strings.Replace(good, "t=1800000000", "t=1800000001", 1), body, now, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secret, tt.header, tt.body, tt.now, 5*time.Minute)
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrSignature)) {
				t.Fatalf("Verify = %v, want ok %v", err, tt.ok)
			}
		})
	}
	if why := notifytest.CheckSignature(hookSecret, Sign(hookSecret, time.Now(), body), body); why != "" {
		t.Fatalf("Sign disagrees with an independent HMAC: %s", why)
	}
}

func TestNotifyQueueFullDrops(t *testing.T) {
	rec := &recorder{}
	n, err := New(Options{Webhook: newWebhook(t), Recorder: rec, QueueSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	e := sampleEvents()["job-failed"]
	// Not running: nothing drains the queue.
	if err := n.Notify(e, Target{Webhook: "http://127.0.0.1:1/a"}, Target{Webhook: "http://127.0.0.1:1/b"}, Target{Email: "c@example.com"}); err != nil {
		t.Fatal(err)
	}
	if s := n.Stats(); s.Dropped != 1 {
		t.Fatalf("stats %+v, want one dropped", s)
	}
	// Stopping records what is still queued as undeliverable.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	if u := rec.all(); len(u) != 2 {
		t.Fatalf("%d recorded undeliverable after stop, want 2", len(u))
	}
}

func TestNotifyInvalid(t *testing.T) {
	n, err := New(Options{Recorder: &recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	e := sampleEvents()["job-failed"]
	tests := []struct {
		name   string
		e      Event
		target Target
	}{
		{"bad event", Event{Kind: "party", Time: when}, Target{Email: "a@example.com"}},
		{"empty target", e, Target{}},
		{"two targets in one", e, Target{Email: "a@example.com", Webhook: "http://x/"}},
		{"not a URL", e, Target{Webhook: "ftp://x/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := n.Notify(tt.e, tt.target); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Notify = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := New(Options{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("New without recorder: %v", err)
	}
	if _, err := NewWebhook(WebhookOptions{Secret: []byte("short")}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("short secret: %v", err)
	}
}

func TestNoChannelIsUndeliverable(t *testing.T) {
	rec := &recorder{}
	n, err := New(Options{Recorder: rec, BaseDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runNotifier(t, n)
	if err := n.Notify(sampleEvents()["job-failed"], Target{Email: "a@example.com"}); err != nil {
		t.Fatal(err)
	}
	notifytest.WaitFor(t, 10*time.Second, func() bool { return len(rec.all()) == 1 })
	if u := rec.all()[0]; u.Attempts != 1 || !errors.Is(u.Err, ErrInvalid) {
		t.Fatalf("undeliverable %+v", u)
	}
}

func TestBackoff(t *testing.T) {
	n, err := New(Options{Recorder: &recorder{}, BaseDelay: time.Second, MaxDelay: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for attempt, full := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 30: 10 * time.Second} {
		t.Run(strconv.Itoa(attempt), func(t *testing.T) {
			for range 100 {
				if d := n.backoff(attempt); d < full/2 || d > full {
					t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempt, d, full/2, full)
				}
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	body := []byte(`{"id":"x"}`)
	now := time.Unix(1_800_000_000, 0)
	f.Add(Sign(hookSecret, now, body), body)
	f.Add("t=,v1=", body)
	f.Add("t=1800000000,v1=zz,t=1", []byte{})
	f.Fuzz(func(t *testing.T, header string, b []byte) {
		err := Verify(hookSecret, header, b, now, 5*time.Minute)
		if err != nil && !errors.Is(err, ErrSignature) {
			t.Fatalf("Verify error is not ErrSignature: %v", err)
		}
		if err == nil && notifytest.CheckSignature(hookSecret, header, b) != "" && strings.Count(header, ",") == 1 {
			// Verify accepted what an independent check refuses; only
			// the timestamp window may differ (checkSignature uses the
			// wall clock).
			if !strings.Contains(notifytest.CheckSignature(hookSecret, header, b), "timestamp") {
				t.Fatalf("Verify accepted %q: %s", header, notifytest.CheckSignature(hookSecret, header, b))
			}
		}
	})
}
