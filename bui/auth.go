package bui

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/fleetvault/fleetvault/httpguard"
	"github.com/fleetvault/fleetvault/service"
)

// logonCookie carries the log-on form's own CSRF token (double submit):
// there is no session yet to hold one.
const logonCookie = "fv_logon"

// logonView is the log-on page's data.
type logonView struct {
	Name, Next, Token, Message string
}

func (u *UI) logonPage(w http.ResponseWriter, r *http.Request) {
	if s := u.sessionOf(r); s != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	u.showLogon(w, r, http.StatusOK, logonView{Next: safeNext(r.URL.Query().Get("next"))})
}

// showLogon renders the log-on form with a fresh form token.
func (u *UI) showLogon(w http.ResponseWriter, r *http.Request, status int, lv logonView) {
	tok, err := randomToken()
	if err != nil {
		http.Error(w, "The server cannot make a random token now; try again.", http.StatusInternalServerError)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: logonCookie, Value: tok, Path: "/logon", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	lv.Token = tok
	u.render(w, status, "logon", view{Title: "Log on", Data: lv})
}

func (u *UI) logon(w http.ResponseWriter, r *http.Request) {
	addr := httpguard.ClientAddr(r)
	if err := r.ParseForm(); err != nil {
		u.showLogon(w, r, http.StatusBadRequest, logonView{Message: "The form could not be read; send it again."})
		return
	}
	name, next := strings.TrimSpace(r.PostForm.Get("name")), safeNext(r.PostForm.Get("next"))
	c, err := r.Cookie(logonCookie)
	if err != nil || !sameToken(c.Value, r.PostForm.Get("csrf")) {
		u.showLogon(w, r, http.StatusForbidden, logonView{Name: name, Next: next, Message: "This form was refused: it did not carry its security token (CSRF). Send it again from this page."})
		return
	}
	if wait, blocked := u.throttle.Blocked(addr); blocked {
		secs := int(math.Ceil(wait.Seconds()))
		w.Header().Set("Retry-After", fmt.Sprint(secs))
		u.showLogon(w, r, http.StatusTooManyRequests, logonView{Name: name, Next: next,
			Message: fmt.Sprintf("Too many failed log-ons from %s. Wait %d s, then try again.", addr, max(secs, 1))})
		return
	}
	id, err := u.svc.LogOn(name, r.PostForm.Get("password"), addr)
	if errors.Is(err, service.ErrUnauthenticated) {
		u.throttle.Failed(addr)
		u.showLogon(w, r, http.StatusUnauthorized, logonView{Name: name, Next: next, Message: "Wrong user name or password (or the user is disabled). Check both and try again."})
		return
	}
	if err != nil {
		u.log.Error("bui: log-on", "user", name, "err", err)
		u.showLogon(w, r, http.StatusInternalServerError, logonView{Name: name, Next: next, Message: "The server could not check your log-on; it is written in the server log. Try again."})
		return
	}
	s, err := u.sessions.create(id.User)
	if err != nil {
		http.Error(w, "The server cannot make a random session id now; try again.", http.StatusInternalServerError)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: logonCookie, Value: "", Path: "/logon", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.SetCookie(w, u.cookie(r, s.id))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// cookie is the session cookie for id.
func (u *UI) cookie(r *http.Request, id string) *http.Cookie {
	return &http.Cookie{Name: cookieName, Value: id, Path: "/", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode}
}

func (u *UI) logout(rq *request) error {
	u.sessions.remove(rq.sess.id)
	c := u.cookie(rq.r, "")
	c.MaxAge = -1
	http.SetCookie(rq.w, c)
	u.showLogon(rq.w, rq.r, http.StatusOK, logonView{Next: "/", Message: "You are logged out."})
	return nil
}

// safeNext keeps a redirect after log-on on this site: a local path only.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\r\n") {
		return "/"
	}
	return next
}
