package httpguard

import "net/http"

// APIPolicy is the Content-Security-Policy of an API that serves no pages:
// nothing may load, nothing may frame it.
const APIPolicy = "default-src 'none'; frame-ancestors 'none'"

// HeaderOptions configure Headers.
type HeaderOptions struct {
	// ContentSecurityPolicy; "" is APIPolicy. A handler may set its own.
	ContentSecurityPolicy string
}

// Headers sets security headers on every answer before next runs, so every
// answer carries them, errors included: no MIME sniffing, no framing, no
// referrer, the content security policy, no caching unless the handler says
// otherwise, and Strict-Transport-Security on TLS connections.
func Headers(next http.Handler, o HeaderOptions) http.Handler {
	csp := o.ContentSecurityPolicy
	if csp == "" {
		csp = APIPolicy
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", csp)
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}
