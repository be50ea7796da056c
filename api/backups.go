package api

import (
	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/service"

	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/fleetvault/fleetvault/catalog"
)

const (
	defaultBackupLimit = 100
	maxBackupLimit     = 10000
)

func (s *API) handleListBackups(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	q, err := backupQuery(r)
	if err != nil {
		return err
	}
	out, err := ss.Backups(r.Context(), q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// backupQuery reads ?client=&group=&tag=key=value&from=&to=&limit=.
func backupQuery(r *http.Request) (apiclient.BackupQuery, error) {
	v := r.URL.Query()
	q := apiclient.BackupQuery{Client: v.Get("client"), Group: v.Get("group"), Tag: v.Get("tag")}
	for _, tp := range []struct {
		name string
		dst  *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if s := v.Get(tp.name); s != "" {
			t, err := parseTime(s)
			if err != nil {
				return q, errBadRequest("query parameter %q: %v", tp.name, err)
			}
			*tp.dst = t
		}
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > service.MaxBackupLimit {
			return q, errBadRequest("query parameter \"limit\" must be a number from 1 to %d, not %q", service.MaxBackupLimit, l)
		}
		q.Limit = n
	}
	return q, nil
}

// parseTime accepts RFC 3339 times and plain dates (midnight UTC).
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use RFC 3339 (2026-11-24T10:00:00Z) or a date (2026-11-24)", s)
}

func (s *API) handleGetBackup(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	b, err := ss.Backup(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, b)
	return nil
}

func (s *API) handleDiffBackups(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	d, err := ss.DiffBackups(r.Context(), r.URL.Query().Get("a"), r.URL.Query().Get("b"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (s *API) handleExport(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	format := r.URL.Query().Get("format")
	if format == "" {
		format = catalog.FormatJSON
	}
	var ct string
	switch format {
	case catalog.FormatJSON:
		ct = "application/json"
	case catalog.FormatSQL:
		ct = "application/sql"
	default:
		return errBadRequest("query parameter \"format\" must be sql or json, not %q", format)
	}
	// Headers go out with the first byte: authorize before.
	if err := ss.MayExport(); err != nil {
		return err
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=\"fleetvault-catalog.%s\"", format))
	if err := ss.Export(r.Context(), w, format); err != nil {
		// Headers may be gone already; the client sees a truncated body.
		s.log.Error("api: catalog export failed", "format", format, "err", err)
	}
	return nil
}
