package notifytest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Hook is a real HTTP listener on loopback that checks each
// request's signature with its own HMAC code (not package notify's), fails
// the first failFirst requests with status, and keeps the rest.
type Hook struct {
	srv       *httptest.Server
	secret    []byte
	failFirst int
	status    int

	mu       sync.Mutex
	requests int
	badSigs  []string
	got      []map[string]any
	ids      []string
}

// StartHook starts a receiver that checks signatures with secret and fails
// the first failFirst requests with status; the test's cleanup stops it.
func StartHook(t *testing.T, secret []byte, failFirst, status int) *Hook {
	t.Helper()
	h := &Hook{secret: secret, failFirst: failFirst, status: status}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *Hook) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests++
	if why := CheckSignature(h.secret, r.Header.Get("Fleetvault-Signature"), body); why != "" {
		h.badSigs = append(h.badSigs, why)
		http.Error(w, why, http.StatusUnauthorized)
		return
	}
	if h.requests <= h.failFirst {
		http.Error(w, "not now", h.status)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil || r.Header.Get("Content-Type") != "application/json" {
		h.badSigs = append(h.badSigs, "not JSON")
		http.Error(w, "not JSON", http.StatusBadRequest)
		return
	}
	h.got = append(h.got, m)
	h.ids = append(h.ids, r.Header.Get("Fleetvault-Delivery"))
	w.WriteHeader(http.StatusNoContent)
}

// CheckSignature is the receiver's own check: t=<unix>,v1=<hex HMAC-SHA256
// of "<t>.<body>">, t within five minutes.
func CheckSignature(secret []byte, header string, body []byte) string {
	parts := strings.Split(header, ",")
	if len(parts) != 2 || !strings.HasPrefix(parts[0], "t=") || !strings.HasPrefix(parts[1], "v1=") {
		return "malformed signature header " + header
	}
	ts := strings.TrimPrefix(parts[0], "t=")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return "stale or bad timestamp " + ts
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts + "." + string(body)))
	want := hex.EncodeToString(m.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(strings.TrimPrefix(parts[1], "v1="))) {
		return "signature mismatch"
	}
	return ""
}

// Snapshot returns how many requests came, the signature problems seen,
// the JSON bodies kept and their delivery ids.
func (h *Hook) Snapshot() (requests int, bad []string, got []map[string]any, ids []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.requests, append([]string(nil), h.badSigs...), append([]map[string]any(nil), h.got...), append([]string(nil), h.ids...)
}

// URL is where the receiver listens.
func (h *Hook) URL() string { return h.srv.URL }
