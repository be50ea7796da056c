package bui

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestSessionStore(t *testing.T) {
	now := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tests := []struct {
		name  string
		after time.Duration // since log-on
		touch bool          // seen every idle/2 until then
		live  bool
	}{
		{"fresh", time.Minute, false, true},
		{"idle too long", 31 * time.Minute, false, false},
		{"used, within the absolute limit", 11 * time.Hour, true, true},
		{"used, past the absolute limit", 13 * time.Hour, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
			st := newSessionStore(30*time.Minute, 12*time.Hour, 10, clock)
			s, err := st.create("alice")
			if err != nil {
				t.Fatal(err)
			}
			if len(s.id) < 43 || len(s.csrf) < 43 || s.id == s.csrf {
				t.Fatalf("id %q, csrf %q: want two different 256-bit tokens", s.id, s.csrf)
			}
			end, absolute := now.Add(tt.after), now.Add(12*time.Hour)
			for tt.touch && now.Add(15*time.Minute).Before(end) && now.Add(15*time.Minute).Before(absolute) {
				now = now.Add(15 * time.Minute)
				if _, ok := st.get(s.id); !ok {
					t.Fatalf("session ended at %v", now)
				}
			}
			now = end
			if _, ok := st.get(s.id); ok != tt.live {
				t.Fatalf("live %v, want %v", ok, tt.live)
			}
		})
	}
}

func TestSessionStoreBounded(t *testing.T) {
	now := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	st := newSessionStore(time.Hour, 12*time.Hour, 3, func() time.Time { return now })
	var ids []string
	for i := 0; i < 5; i++ {
		now = now.Add(time.Second)
		s, err := st.create("u")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.id)
	}
	if n := st.len(); n != 3 {
		t.Fatalf("%d sessions kept, want the bound 3", n)
	}
	if _, ok := st.get(ids[0]); ok {
		t.Fatal("the least recently seen session was kept")
	}
	if _, ok := st.get(ids[4]); !ok {
		t.Fatal("the newest session went")
	}
}

func TestSafeNext(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"/jobs/x", "/jobs/x"}, {"", "/"}, {"https://evil.example/", "/"}, {"//evil.example/", "/"},
		{"/\\evil.example", "/"}, {"/ok?a=1", "/ok?a=1"}, {"/x\r\nSet-Cookie: a", "/"},
	} {
		t.Run(tt.in, func(t *testing.T) {
			if got := safeNext(tt.in); got != tt.want {
				t.Fatalf("safeNext(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestPages checks, without a browser, the answers a person gets: the
// headers of every page, a session's cookie, a POST without its token, a
// page that is not there, and the overview's weight at 300 devices.
func TestPages(t *testing.T) {
	u, s := overviewWorld(t, 300)
	h := u.Handler()
	t.Run("headers", func(t *testing.T) {
		w := get(u, h, s, "/")
		if w.Code != http.StatusOK {
			t.Fatalf("overview: %d %s", w.Code, w.Body.String())
		}
		csp := w.Header().Get("Content-Security-Policy")
		for _, want := range []string{"script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("CSP %q lacks %q", csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || w.Header().Get("X-Frame-Options") != "DENY" {
			t.Errorf("CSP %q, X-Frame-Options %q", csp, w.Header().Get("X-Frame-Options"))
		}
		if n := w.Body.Len(); n > 150<<10 {
			t.Errorf("the overview of 300 devices weighs %d bytes", n)
		}
	})
	t.Run("no session", func(t *testing.T) {
		w := get(u, h, &session{id: "not-a-session"}, "/jobs")
		if w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/logon?next=") {
			t.Fatalf("%d %q, want a redirect to the log-on", w.Code, w.Header().Get("Location"))
		}
	})
	t.Run("POST without its token", func(t *testing.T) {
		for _, form := range []url.Values{{}, {"csrf": {"wrong"}}} {
			r := postForm("/settings/password", form)
			r.AddCookie(&http.Cookie{Name: cookieName, Value: s.id})
			w := recorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "CSRF") {
				t.Fatalf("csrf %q: %d %s", form.Get("csrf"), w.Code, w.Body.String())
			}
		}
	})
	t.Run("not found", func(t *testing.T) {
		for _, p := range []string{"/nothing-here", "/devices/not-a-device", "/jobs/nope"} {
			if w := get(u, h, s, p); w.Code != http.StatusNotFound && w.Code != http.StatusUnprocessableEntity {
				t.Errorf("%s: %d", p, w.Code)
			}
		}
	})
}
