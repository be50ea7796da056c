package bui

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/fleetvault/fleetvault/httpguard"
	"github.com/fleetvault/fleetvault/service"
)

// Policy is the Content-Security-Policy of the pages: scripts, styles and
// images from this server only, no inline script or style, no framing, and
// forms posted only here.
const Policy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Defaults of Options.
const (
	DefaultIdle        = 30 * time.Minute
	DefaultMaxAge      = 12 * time.Hour
	DefaultMaxSessions = 10000
)

// Options configure the BUI.
type Options struct {
	Service *service.Service // required
	// Throttle limits failed log-ons per client address; share the API's so
	// both count against one allowance. nil makes one with httpguard's
	// defaults.
	Throttle *httpguard.Throttle
	// Idle and MaxAge end a session unused for Idle, or MaxAge after log-on.
	Idle, MaxAge time.Duration
	// MaxSessions bounds the sessions kept in memory.
	MaxSessions int
	// Ctx ends live-update streams when done (the server closing); nil: never.
	Ctx    context.Context
	Now    func() time.Time
	Logger *slog.Logger
}

// UI is the web view. Its handler is safe for concurrent use.
type UI struct {
	svc      *service.Service
	throttle *httpguard.Throttle
	sessions *sessionStore
	pages    *pages
	assets   http.Handler
	ctx      context.Context
	now      func() time.Time
	log      *slog.Logger
}

// New returns the BUI over opts.Service.
func New(opts Options) (*UI, error) {
	if opts.Service == nil {
		return nil, errors.New("bui: no service")
	}
	if opts.Idle <= 0 {
		opts.Idle = DefaultIdle
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Throttle == nil {
		opts.Throttle = httpguard.NewThrottle(httpguard.ThrottleOptions{Logger: opts.Logger})
	}
	if opts.Ctx == nil {
		opts.Ctx = context.Background()
	}
	p, err := parsePages()
	if err != nil {
		return nil, err
	}
	assets, err := assetHandler()
	if err != nil {
		return nil, err
	}
	return &UI{svc: opts.Service, throttle: opts.Throttle, pages: p, assets: assets, ctx: opts.Ctx, now: opts.Now, log: opts.Logger,
		sessions: newSessionStore(opts.Idle, opts.MaxAge, opts.MaxSessions, opts.Now)}, nil
}

// request is one page request of a person logged on.
type request struct {
	w    http.ResponseWriter
	r    *http.Request
	sess *session
	// ss acts for the page: the person, or the owner an admin views as;
	// self is always the person.
	ss, self *service.Session
}

// handler serves one page for a person logged on.
type handler func(u *UI, rq *request) error

// route is one entry of the BUI's route table.
type route struct {
	pattern string // a net/http pattern with its method
	handle  handler
	// writes marks a POST an admin viewing as an owner may still make
	// (log out, stop viewing); every other POST is refused while viewing.
	whileViewing bool
}

// routes is the whole BUI (docs/api.md lists it).
func routes() []route {
	return []route{
		{pattern: "GET /{$}", handle: (*UI).overview},
		{pattern: "GET /devices/{id}", handle: (*UI).device},
		{pattern: "GET /jobs", handle: (*UI).jobs},
		{pattern: "GET /jobs/{id}", handle: (*UI).job},
		{pattern: "GET /jobs/{id}/events", handle: (*UI).jobEvents},
		{pattern: "POST /jobs/{id}/cancel", handle: (*UI).cancelJob},
		{pattern: "GET /restore", handle: (*UI).wizard},
		{pattern: "POST /restore/plan", handle: (*UI).wizardPlan},
		{pattern: "POST /restore/start", handle: (*UI).wizardStart},
		{pattern: "GET /stats", handle: (*UI).stats},
		{pattern: "GET /stats.csv", handle: (*UI).statsCSV},
		{pattern: "GET /certification", handle: (*UI).certifications},
		{pattern: "GET /certification/backup", handle: (*UI).certification},
		{pattern: "POST /certification/test", handle: (*UI).testRestore},
		{pattern: "POST /certification/decide", handle: (*UI).decide},
		{pattern: "GET /settings", handle: (*UI).settings},
		{pattern: "POST /settings/notifications", handle: (*UI).setNotifications},
		{pattern: "POST /settings/password", handle: (*UI).changePassword},
		{pattern: "GET /admin", handle: (*UI).admin},
		{pattern: "POST /admin/users", handle: (*UI).addUser},
		{pattern: "POST /admin/users/{name}/disable", handle: (*UI).disableUser},
		{pattern: "POST /admin/assign", handle: (*UI).assignOwner},
		{pattern: "POST /admin/view-as", handle: (*UI).viewAs, whileViewing: true},
		{pattern: "POST /view-as/stop", handle: (*UI).stopViewing, whileViewing: true},
		{pattern: "POST /logout", handle: (*UI).logout, whileViewing: true},
	}
}

// Handler returns the BUI's pages, its log-on, and its assets.
func (u *UI) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routes() {
		mux.Handle(rt.pattern, u.wrap(rt))
	}
	mux.HandleFunc("GET /logon", u.logonPage)
	mux.HandleFunc("POST /logon", u.logon)
	mux.Handle("GET /assets/", u.assets)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		u.errorPage(w, r, nil, http.StatusNotFound, "There is no page "+r.URL.Path+" here.")
	})
	return httpguard.Headers(mux, httpguard.HeaderOptions{ContentSecurityPolicy: Policy})
}

// cookieName is the session cookie's name.
const cookieName = "fv_session"

// wrap finds the request's session (or sends the person to log on), checks
// a POST's CSRF token, and runs the page.
func (u *UI) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess := u.sessionOf(r)
		if sess == nil {
			if r.Method != http.MethodGet {
				u.errorPage(w, r, nil, http.StatusUnauthorized, "Your session has ended. Log on again, then repeat what you were doing.")
				return
			}
			http.Redirect(w, r, "/logon?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		addr := httpguard.ClientAddr(r)
		id, err := u.svc.Identify(sess.user, addr)
		if err != nil {
			u.sessions.remove(sess.id)
			http.Redirect(w, r, "/logon", http.StatusSeeOther)
			return
		}
		rq := &request{w: w, r: r, sess: sess, self: u.svc.As(id)}
		rq.ss = rq.self
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil || !sameToken(r.PostForm.Get("csrf"), sess.csrf) {
				u.errorPage(w, r, sess, http.StatusForbidden, "This form was refused: it did not carry this session's security token (CSRF). Reload the page and send it again.")
				return
			}
			if sess.viewAs != "" && !rt.whileViewing {
				u.errorPage(w, r, sess, http.StatusForbidden, "You are viewing as "+sess.viewAs+": this view is read-only. Stop viewing to make changes.")
				return
			}
		}
		if sess.viewAs != "" {
			vs, err := rq.self.Viewing(sess.viewAs)
			if err != nil {
				u.sessions.update(sess.id, func(s *session) { s.viewAs = "" })
				u.fail(rq, err)
				return
			}
			rq.ss = vs
		}
		if err := rt.handle(u, rq); err != nil {
			u.fail(rq, err)
		}
	})
}

// sessionOf returns the live session the request's cookie names, or nil.
func (u *UI) sessionOf(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return nil
	}
	s, ok := u.sessions.get(c.Value)
	if !ok {
		return nil
	}
	return s
}
