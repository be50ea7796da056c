package bui

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/service"
)

// settingsView is the settings page's data.
type settingsView struct {
	Message   string // a refused change, in words
	MinLen    int
	Prefs     apiclient.NotificationPrefs
	Retention int  // days of statistics history
	Admin     bool // may change the retention
}

func (u *UI) settings(rq *request) error {
	return u.settingsPage(rq, http.StatusOK, "", "")
}

// settingsPage shows the settings with a refusal (status >= 400) or a
// flash.
func (u *UI) settingsPage(rq *request, status int, msg, flash string) error {
	ctx := rq.r.Context()
	v := settingsView{MinLen: service.MinPasswordLen, Message: msg, Admin: rq.self.Identity().Role == service.RoleAdmin}
	var err error
	if v.Prefs, err = rq.self.NotificationPrefs(ctx, rq.sess.user); err != nil {
		return err
	}
	st, err := rq.self.Stats(ctx, apiclient.StatsQuery{Since: u.now(), Until: u.now()})
	if err != nil {
		return err
	}
	v.Retention = st.RetentionDays
	pv := u.viewFor(rq.sess, rq.self, "Settings", "settings", v)
	pv.Flash = flash
	u.render(rq.w, status, "settings", pv)
	return nil
}

// settingsResult shows err on the settings page when it is the person's
// to fix, else the flash.
func (u *UI) settingsResult(rq *request, err error, flash string) error {
	switch {
	case err == nil:
		return u.settingsPage(rq, http.StatusOK, "", flash)
	case errors.Is(err, service.ErrInvalid), errors.Is(err, service.ErrForbidden):
		return u.settingsPage(rq, statusOf(err), capitalize(err.Error())+".", "")
	}
	return err
}

func (u *UI) setNotifications(rq *request) error {
	f := rq.r.PostForm
	mode, email, digest := f.Get("mode"), strings.TrimSpace(f.Get("email")), f.Get("digest") == "on"
	upd := apiclient.NotificationUpdate{Mode: &mode, Email: &email, Digest: &digest}
	if _, err := rq.self.SetNotificationPrefs(rq.r.Context(), rq.sess.user, upd); err != nil {
		return u.settingsResult(rq, err, "")
	}
	if days := strings.TrimSpace(f.Get("retention")); days != "" && rq.self.Identity().Role == service.RoleAdmin {
		n, err := strconv.Atoi(days)
		if err != nil {
			return u.settingsResult(rq, &service.FieldError{Field: "retention", Problem: "must be a whole number of days, not " + strconv.Quote(days)}, "")
		}
		if err := rq.self.SetStatsRetention(rq.r.Context(), n); err != nil {
			return u.settingsResult(rq, err, "")
		}
	}
	return u.settingsResult(rq, nil, "Your notification settings are saved.")
}

func (u *UI) changePassword(rq *request) error {
	f := rq.r.PostForm
	if f.Get("new") != f.Get("again") {
		return u.settingsPage(rq, http.StatusBadRequest, "The new password and its repetition differ; type them again.", "")
	}
	err := rq.self.ChangeOwnPassword(rq.r.Context(), f.Get("current"), f.Get("new"))
	if err == nil {
		u.sessions.removeUser(rq.sess.user, rq.sess.id) // other browsers log on again
	}
	return u.settingsResult(rq, err, "Your password is changed; your other sessions are logged out.")
}

// adminView is the admin page's data.
type adminView struct {
	Users   []apiclient.User
	Owners  []string
	Message string
}

func (u *UI) admin(rq *request) error {
	return u.adminPage(rq, http.StatusOK, "", "")
}

// adminPage shows the admin page with a refusal (status >= 400) or a flash.
func (u *UI) adminPage(rq *request, status int, msg, flash string) error {
	us, err := rq.self.Users(rq.r.Context())
	if err != nil {
		return err
	}
	v := adminView{Users: us, Message: msg}
	for _, x := range us {
		if x.Role == service.RoleOwner && !x.Disabled {
			v.Owners = append(v.Owners, x.Name)
		}
	}
	pv := u.viewFor(rq.sess, rq.self, "Admin", "admin", v)
	pv.Flash = flash
	u.render(rq.w, status, "admin", pv)
	return nil
}

// adminResult shows err on the admin page when it is the person's to fix,
// else the flash.
func (u *UI) adminResult(rq *request, err error, flash string) error {
	switch {
	case err == nil:
		return u.adminPage(rq, http.StatusOK, "", flash)
	case errors.Is(err, service.ErrInvalid), errors.Is(err, service.ErrConflict), errors.Is(err, service.ErrNotFound):
		return u.adminPage(rq, statusOf(err), capitalize(err.Error())+".", "")
	}
	return err
}

func (u *UI) addUser(rq *request) error {
	f := rq.r.PostForm
	name := strings.TrimSpace(f.Get("name"))
	err := rq.self.AddUser(rq.r.Context(), name, f.Get("role"), f.Get("password"))
	return u.adminResult(rq, err, "User "+name+" added.")
}

func (u *UI) disableUser(rq *request) error {
	name := rq.r.PathValue("name")
	err := rq.self.DisableUser(rq.r.Context(), name)
	if err == nil {
		u.sessions.removeUser(name, "")
	}
	return u.adminResult(rq, err, "User "+name+" disabled and logged out.")
}

func (u *UI) assignOwner(rq *request) error {
	f := rq.r.PostForm
	a := catalog.Assignment{Devices: splitList(f.Get("devices")), Groups: splitList(f.Get("groups")), BackupGroups: splitList(f.Get("backup_groups"))}
	owner := strings.TrimSpace(f.Get("owner"))
	var err error
	if f.Get("unassign") != "" {
		err = rq.self.UnassignOwner(rq.r.Context(), owner, a)
	} else {
		err = rq.self.AssignOwner(rq.r.Context(), owner, a)
	}
	return u.adminResult(rq, err, "Assignments of "+owner+" changed.")
}

func (u *UI) viewAs(rq *request) error {
	owner := strings.TrimSpace(rq.r.PostForm.Get("owner"))
	if _, err := rq.self.ViewAs(rq.r.Context(), owner); err != nil {
		return u.adminResult(rq, err, "")
	}
	u.sessions.update(rq.sess.id, func(s *session) { s.viewAs = owner })
	http.Redirect(rq.w, rq.r, "/", http.StatusSeeOther)
	return nil
}

func (u *UI) stopViewing(rq *request) error {
	u.sessions.update(rq.sess.id, func(s *session) { s.viewAs = "" })
	http.Redirect(rq.w, rq.r, "/admin", http.StatusSeeOther)
	return nil
}

// splitList reads a list typed as names separated by commas, spaces or
// lines.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}
