package api

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/fleetvault/fleetvault/agent"
)

// TestMetricsFromLoopback: /metrics needs no token from the server's own
// host, a token from elsewhere unless MetricsOpen, and never an owner's.
func TestMetricsFromLoopback(t *testing.T) {
	in := newInstallation(t, map[string]agent.Transport{"": offlineTransport{}})
	admin, err := in.tokens.Create("admin")
	if err != nil {
		t.Fatal(err)
	}
	open := New(t.Context(), Options{Service: in.api.svc, Engine: in.eng, Tokens: in.tokens, MetricsOpen: true,
		Metrics: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})})
	for _, tc := range []struct {
		name   string
		api    *API
		remote string
		token  string
		want   int
	}{
		{"loopback v4, no token", in.api, "127.0.0.1:5000", "", 200},
		{"loopback v6, no token", in.api, "[::1]:5000", "", 200},
		{"another host, no token", in.api, "192.0.2.9:5000", "", 401},
		{"another host, admin token", in.api, "192.0.2.9:5000", admin, 200},
		{"another host, metrics open", open, "192.0.2.9:5000", "", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/metrics", nil)
			req.RemoteAddr = tc.remote
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			rec := httptest.NewRecorder()
			tc.api.Handler().ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
		})
	}
}
