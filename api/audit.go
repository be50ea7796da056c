package api

import (
	"net/http"
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
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return errBadRequest("query parameter \"limit\" must be a positive count, not %q", l)
		}
		q.Limit = n
	}
	out, err := ss.Audit(r.Context(), q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
