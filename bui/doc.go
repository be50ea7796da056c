// Package bui is the Backup User Interface: the data owner's web view of
// Fleetvault (the article's "BUI", http://host:8686), served by
// `fleetvault serve` under "/" beside the JSON API under /api/v1.
//
// # Basics
//
// New(Options{Service: svc}).Handler() serves server-rendered pages
// (html/template, one shared layout) over service.Session only: every page
// asks the service, which authorizes, so an owner sees only their devices
// here exactly as in the API, and what is not theirs is a 404. Every asset
// (one CSS file, one small script for live progress over Server-Sent Events)
// is embedded in the binary; no request leaves the server. Everything but
// live updates works without JavaScript: sorting, filtering and paging are
// query parameters, and every action is a form.
//
// # Security
//
// A person logs on with their user name and password (service.LogOn). The
// server keeps the session (a random 256-bit id in an HttpOnly,
// SameSite=Strict cookie, Secure under TLS, Path=/) with an idle and an
// absolute expiry, and one CSRF token per session that every POST must
// carry (compared in constant time). Failed log-ons are throttled per client
// address with the server's httpguard.Throttle. Pages carry a
// Content-Security-Policy without inline scripts or styles and may not be
// framed. An admin may view the service as a data owner for support
// (audited, read-only, with a banner on every page).
//
// # Caveats
//
// Sessions live in memory, bounded (Options.MaxSessions; the least recently
// used go first): a server restart logs everyone out. The overview reads
// every device the caller may see on each request (sorting and counts need
// them all); BenchmarkOverview measures 10,000 devices.
package bui
