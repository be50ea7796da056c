package bui

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/fleetvault/fleetvault/api"
	"github.com/fleetvault/fleetvault/service"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets/*
var assetFS embed.FS

// pages are the parsed templates: each page with the shared layout.
type pages struct {
	byName map[string]*template.Template
}

func parsePages() (*pages, error) {
	layout, err := template.New("layout.html").Funcs(funcs()).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("bui: parse the layout: %w", err)
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	p := &pages{byName: map[string]*template.Template{}}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, fmt.Errorf("bui: parse %s: %w", base, err)
		}
		p.byName[strings.TrimSuffix(base, ".html")] = t
	}
	return p, nil
}

// view is what every page's template gets.
type view struct {
	Title  string
	Nav    string // the navigation entry to mark current
	User   string
	Role   string
	ViewAs string // the owner an admin views as, for the banner
	CSRF   string
	Flash  string // a sentence about what just happened
	Data   any
}

// render writes page name with data as the answer, with status.
func (u *UI) render(w http.ResponseWriter, status int, name string, v view) {
	t := u.pages.byName[name]
	var buf bytes.Buffer
	if t == nil {
		u.log.Error("bui: no template", "page", name)
		status, t = http.StatusInternalServerError, u.pages.byName["error"]
		v.Data = errorView{Status: status, Message: "This page cannot be shown; the server log says why."}
	}
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		u.log.Error("bui: render", "page", name, "err", err)
		http.Error(w, "This page could not be drawn; the server log says why.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// page renders a page for a person logged on.
func (u *UI) page(rq *request, status int, name, title, nav string, data any) error {
	u.render(rq.w, status, name, u.viewFor(rq.sess, rq.self, title, nav, data))
	return nil
}

func (u *UI) viewFor(sess *session, self *service.Session, title, nav string, data any) view {
	v := view{Title: title, Nav: nav, Data: data}
	if sess != nil {
		v.User, v.CSRF, v.ViewAs = sess.user, sess.csrf, sess.viewAs
		if self != nil {
			v.Role = self.Identity().Role
		}
	}
	return v
}

// errorView is the error page's data.
type errorView struct {
	Status  int
	Message string
}

// errorPage answers with a readable error page.
func (u *UI) errorPage(w http.ResponseWriter, r *http.Request, sess *session, status int, msg string) {
	var self *service.Session
	if sess != nil {
		if id, err := u.svc.Identify(sess.user, ""); err == nil {
			self = u.svc.As(id)
		}
	}
	u.render(w, status, "error", u.viewFor(sess, self, http.StatusText(status), "", errorView{Status: status, Message: msg}))
}

// fail answers err as a page: the service's kinds of error map to the
// statuses the API uses, with the service's sentence; anything else is
// logged and worded generally, never shown as a trace.
func (u *UI) fail(rq *request, err error) {
	status := statusOf(err)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		u.log.Error("bui: page failed", "path", rq.r.URL.Path, "user", rq.sess.user, "err", err)
		msg = "Something went wrong on the server; it is written in the server log. Try again, and tell your administrator if it goes on."
	}
	u.errorPage(rq.w, rq.r, rq.sess, status, capitalize(msg)+".")
}

// statusOf maps the service's kinds of error to the API's statuses
// (api.Status); anything else is 500.
func statusOf(err error) int {
	if status, ok := api.Status(err); ok {
		return status
	}
	return http.StatusInternalServerError
}

func capitalize(s string) string {
	s = strings.TrimSuffix(strings.TrimSpace(s), ".")
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// assetHandler serves the embedded assets, cacheable for a day.
func assetHandler() (http.Handler, error) {
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		return nil, fmt.Errorf("bui: assets: %w", err)
	}
	files := http.StripPrefix("/assets/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		files.ServeHTTP(w, r)
	}), nil
}

// funcs are the templates' helpers.
func funcs() template.FuncMap {
	return template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		"whenPtr": func(t *time.Time) string {
			if t == nil || t.IsZero() {
				return "-"
			}
			return t.UTC().Format("2006-01-02 15:04:05 UTC")
		},
		"age":  service.Age,
		"dur":  func(d time.Duration) string { return d.Round(time.Second).String() },
		"pct":  func(f float64) string { return fmt.Sprintf("%.1f %%", 100*f) },
		"add":  func(a, b int) int { return a + b },
		"sub":  func(a, b int) int { return a - b },
		"eq2":  func(a, b any) bool { return fmt.Sprint(a) == fmt.Sprint(b) },
		"str":  func(v any) string { return fmt.Sprint(v) },
		"msec": func(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05 UTC") },
	}
}
