package api

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/service"
)

// handleAudit serves GET /audit?user=&since=&limit= (admin only).
func (s *API) handleAudit(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	v := r.URL.Query()
	q := apiclient.AuditQuery{User: v.Get("user")}
	if since := v.Get("since"); since != "" {
		t, err := parseTime(since)
		if err != nil {
			return errBadRequest("query parameter \"since\": %v", err)
		}
		q.Since = t
	}
	var err error
	if q.Limit, err = limitParam(v); err != nil {
		return err
	}
	out, err := ss.Audit(r.Context(), q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// limitParam reads the query parameter limit: a positive count, or 0 when
// absent.
func limitParam(v url.Values) (int, error) {
	l := v.Get("limit")
	if l == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 {
		return 0, errBadRequest("query parameter \"limit\" must be a positive count, not %q", l)
	}
	return n, nil
}
