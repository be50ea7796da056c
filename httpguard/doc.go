// Package httpguard hardens an HTTP server that faces a network, whatever it
// serves: TLS (a certificate from files, or a self-signed one kept beside the
// installation), timeouts on every phase of a request and a limit on header
// size, security headers on every answer, and throttling of failed
// authentications per client address.
//
// # Basics
//
// Listen opens the listener and builds the *http.Server; Serve serves on it.
// Wrap the handler with Headers and with a Throttle's Wrap:
//
//	th := httpguard.NewThrottle(httpguard.ThrottleOptions{})
//	h := httpguard.Headers(th.Wrap(api), httpguard.HeaderOptions{})
//	srv, err := httpguard.Listen(httpguard.Options{Addr: ":8686", SelfSignedDir: dir}, h)
//
// The throttle needs no hook into authentication: every answer with status
// 401 counts as a failed authentication of the client's address. An address
// past its allowance is answered 429 with Retry-After, before the handler
// runs, until the allowance refills; other addresses are unaffected.
//
// # Caveats
//
// WriteTimeout bounds the whole answer. A handler that streams for longer
// (Server-Sent Events) lifts its own deadline with
// http.NewResponseController(w).SetWriteDeadline(time.Time{}).
//
// The client address is the TCP peer. Behind a reverse proxy every client
// has the proxy's address; the proxy should then do the throttling.
package httpguard
