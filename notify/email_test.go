package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"mime"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/notify/notifytest"
)

func testEmail(t *testing.T, s *notifytest.SMTPServer, user, password string) *Email {
	t.Helper()
	m, err := NewEmail(EmailOptions{Host: "127.0.0.1", Port: s.Addr.Port, Username: user, Password: password,
		From: "Fleetvault <fleetvault@example.com>", TLSConfig: &tls.Config{RootCAs: s.Roots}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestEmailArrives sends every sample event through a Notifier to the SMTP
// server and checks each mail's envelope, TLS, login, subject and body.
func TestEmailArrives(t *testing.T) {
	srv := notifytest.StartSMTP(t)
	rec := &recorder{}
	n, err := New(Options{Email: testEmail(t, srv, notifytest.User, notifytest.Password), Recorder: rec, BaseDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() { cancel(); <-done }()

	r, _ := NewRenderer()
	want := map[string]Message{} // by event id
	for _, e := range sampleEvents() {
		m, err := r.Render(e)
		if err != nil {
			t.Fatal(err)
		}
		want[e.ID] = m
		if err := n.Notify(e, Target{Email: "owner+" + e.ID + "@example.com"}); err != nil {
			t.Fatal(err)
		}
	}
	notifytest.WaitFor(t, 30*time.Second, func() bool { s := n.Stats(); return s.Sent+s.Undeliverable == uint64(len(want)) })
	if u := rec.all(); len(u) > 0 {
		t.Fatalf("undeliverable: %v", u[0].Err)
	}
	dec := new(mime.WordDecoder)
	for _, got := range srv.Received() {
		if len(got.To) != 1 {
			t.Fatalf("recipients %v", got.To)
		}
		id := strings.TrimSuffix(strings.TrimPrefix(got.To[0], "owner+"), "@example.com")
		w, ok := want[id]
		if !ok {
			t.Fatalf("mail to unexpected %s", got.To[0])
		}
		t.Run(id, func(t *testing.T) {
			subject, err := dec.DecodeHeader(got.Header.Get("Subject"))
			if err != nil {
				t.Fatal(err)
			}
			if !got.TLS || got.User != notifytest.User || got.From != "fleetvault@example.com" {
				t.Errorf("tls %v, user %q, from %q", got.TLS, got.User, got.From)
			}
			if subject != w.Subject {
				t.Errorf("subject %q, want %q", subject, w.Subject)
			}
			if strings.TrimRight(got.Body, "\n") != strings.TrimRight(w.Body, "\n") {
				t.Errorf("body:\n%s\nwant:\n%s", got.Body, w.Body)
			}
			if !strings.HasPrefix(got.Header.Get("Content-Type"), "text/plain") {
				t.Errorf("content type %q", got.Header.Get("Content-Type"))
			}
		})
	}
	if got := len(srv.Received()); got != len(want) {
		t.Fatalf("%d mails arrived, want %d", got, len(want))
	}
}

func TestEmailRefused(t *testing.T) {
	srv := notifytest.StartSMTP(t)
	tests := []struct {
		name string
		m    *Email
	}{
		{"wrong password", testEmail(t, srv, notifytest.User, "nope")},
		{"no login", testEmail(t, srv, "", "")},
		{"untrusted certificate", func() *Email {
			m, err := NewEmail(EmailOptions{Host: "127.0.0.1", Port: srv.Addr.Port, Username: notifytest.User, Password: notifytest.Password,
				From: "fleetvault@example.com", Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			return m
		}()},
	}
	msg := Message{Subject: "s", Body: "b"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.m.Send(context.Background(), []string{"a@example.com"}, msg); err == nil {
				t.Fatal("sent")
			}
			if n := len(srv.Received()); n != 0 {
				t.Fatalf("%d mails arrived", n)
			}
		})
	}
}

func TestNewEmailInvalid(t *testing.T) {
	for name, o := range map[string]EmailOptions{
		"no host":    {From: "a@example.com"},
		"bad sender": {Host: "h", From: "not an address"},
		"bad port":   {Host: "h", From: "a@example.com", Port: 70000},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := NewEmail(o); !errors.Is(err, ErrInvalid) {
				t.Fatalf("NewEmail = %v", err)
			}
		})
	}
	m, _ := NewEmail(EmailOptions{Host: "h", From: "a@example.com"})
	if err := m.Send(context.Background(), []string{"nope"}, Message{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad recipient: %v", err)
	}
}
