package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/service"
)

// handleGetNotifications serves GET /users/{name}/notifications.
func (s *API) handleGetNotifications(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	out, err := ss.NotificationPrefs(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// handlePutNotifications serves PUT /users/{name}/notifications.
func (s *API) handlePutNotifications(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	var u apiclient.NotificationUpdate
	if err := decodeJSON(w, r, &u); err != nil {
		return err
	}
	out, err := ss.SetNotificationPrefs(r.Context(), r.PathValue("name"), u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// handleTestNotifications serves POST /users/{name}/notifications/test.
func (s *API) handleTestNotifications(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	out, err := ss.TestNotifications(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// handleUndeliverable serves GET /notifications/undeliverable?limit= (admin
// only).
func (s *API) handleUndeliverable(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	limit, err := limitParam(r.URL.Query())
	if err != nil {
		return err
	}
	out, err := ss.Undeliverable(r.Context(), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// handleStats serves GET /stats?owner=&group=&since=&until=, as JSON or, when
// the client accepts text/csv (and not JSON first), as CSV.
func (s *API) handleStats(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	v := r.URL.Query()
	q := apiclient.StatsQuery{Owner: v.Get("owner"), Group: v.Get("group")}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if s := v.Get(p.name); s != "" {
			t, err := parseTime(s)
			if err != nil {
				return errBadRequest("query parameter %q: %v", p.name, err)
			}
			*p.t = t
		}
	}
	out, err := ss.Stats(r.Context(), q)
	if err != nil {
		return err
	}
	if wantsCSV(r) {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		return out.WriteCSV(w)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// wantsCSV reports whether the Accept header asks for text/csv before JSON.
func wantsCSV(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		switch strings.TrimSpace(strings.SplitN(part, ";", 2)[0]) {
		case "text/csv":
			return true
		case "application/json", "*/*":
			return false
		}
	}
	return false
}

// handleStatsRetention serves PUT /stats/retention (admin only).
func (s *API) handleStatsRetention(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	var b apiclient.StatsRetention
	if err := decodeJSON(w, r, &b); err != nil {
		return err
	}
	if err := ss.SetStatsRetention(r.Context(), b.Days); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
