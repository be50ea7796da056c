package server

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/settingsdoc"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// Backup is a data piece as the API shows it.
type Backup struct {
	ID       string            `json:"id"`
	Client   string            `json:"client"`
	Name     string            `json:"name"`
	Type     string            `json:"type"`
	Owner    string            `json:"owner,omitempty"`
	Location string            `json:"location"`
	Group    string            `json:"group,omitempty"`
	Job      string            `json:"job,omitempty"`
	Time     time.Time         `json:"time"`
	Expiry   *time.Time        `json:"expiry,omitempty"`
	Size     int64             `json:"size"`
	Tag      tagmatch.Tag      `json:"tag"`
	Hash     string            `json:"hash"`
	Optional map[string]string `json:"optional,omitempty"`
	// Settings, decoded from CBOR, with GET /backups/{id} only.
	Settings any `json:"settings,omitempty"`
}

// Change is one difference between two backups' settings (a JSON Pointer path).
type Change = settingsdoc.Change

// Diff answers GET /backups/diff: what b changes relative to a.
type Diff = settingsdoc.Diff

const (
	defaultBackupLimit = 100
	maxBackupLimit     = 10000
)

// BackupView is how the API shows a catalog piece (without its settings).
func BackupView(p catalog.Piece) Backup {
	b := Backup{ID: p.ID, Client: p.Client, Name: p.Name, Type: p.Type, Owner: p.Owner, Location: p.Location,
		Group: p.Group, Job: p.Job, Time: p.Time, Size: p.Size, Tag: p.Tag, Hash: p.Ref.String(), Optional: p.Optional}
	if !p.Expiry.IsZero() {
		e := p.Expiry
		b.Expiry = &e
	}
	if b.Tag == nil {
		b.Tag = tagmatch.Tag{}
	}
	return b
}

func (s *Server) handleListBackups(w http.ResponseWriter, r *http.Request) error {
	q, err := backupQuery(r)
	if err != nil {
		return err
	}
	ps, err := s.Catalog.Pieces(q)
	if err != nil {
		return fmt.Errorf("query backups: %w", err)
	}
	out := make([]Backup, len(ps))
	for i, p := range ps {
		out[i] = BackupView(p)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// backupQuery reads ?client=&group=&tag=key=value&from=&to=&limit=.
func backupQuery(r *http.Request) (catalog.Query, error) {
	v := r.URL.Query()
	q := catalog.Query{Client: v.Get("client"), Group: v.Get("group"), Limit: defaultBackupLimit}
	if t := v.Get("tag"); t != "" {
		k, val, ok := strings.Cut(t, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return q, errBadRequest("query parameter \"tag\" must be key=value (e.g. tag=zone=South), not %q", t)
		}
		q.TagKey, q.TagValue = tagmatch.NormalizeKey(strings.TrimSpace(k)), strings.TrimSpace(val)
	}
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
		if err != nil || n < 1 || n > maxBackupLimit {
			return q, errBadRequest("query parameter \"limit\" must be a number from 1 to %d, not %q", maxBackupLimit, l)
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

func (s *Server) handleGetBackup(w http.ResponseWriter, r *http.Request) error {
	p, settings, err := s.backupWithSettings(r.PathValue("id"))
	if err != nil {
		return err
	}
	b := BackupView(p)
	b.Settings = settingsdoc.JSONValue(settings)
	writeJSON(w, http.StatusOK, b)
	return nil
}

// backupWithSettings loads a piece and decodes its settings.
func (s *Server) backupWithSettings(id string) (catalog.Piece, agent.Settings, error) {
	p, settings, err := BackupSettings(s.Catalog, id)
	if errors.Is(err, catalog.ErrNotFound) {
		return p, nil, errNotFound("no backup %q; list them with GET /api/v1/backups", id)
	}
	return p, settings, err
}

// BackupSettings loads piece id from c and decodes its settings (the
// content is hash-checked on read). An unknown id wraps catalog.ErrNotFound.
func BackupSettings(c *catalog.Catalog, id string) (catalog.Piece, agent.Settings, error) {
	p, err := c.Piece(id)
	if err != nil {
		return p, nil, fmt.Errorf("look up backup %s: %w", id, err)
	}
	content, err := c.Content(p.Ref)
	if err != nil {
		return p, nil, fmt.Errorf("read the settings of backup %s: %w", id, err)
	}
	settings, err := agent.DecodeSettings(content)
	if err != nil {
		return p, nil, fmt.Errorf("decode the settings of backup %s: %w", id, err)
	}
	return p, settings, nil
}

// SettingsJSON turns decoded settings into a value encoding/json can write.
func SettingsJSON(s agent.Settings) any { return settingsdoc.JSONValue(s) }

// DiffSettings says how the settings of backup b differ from those of a:
// keys added, removed and changed, by JSON Pointer path.
func DiffSettings(a, b string, sa, sb agent.Settings) Diff {
	return settingsdoc.DiffSettings(a, b, sa, sb)
}

func (s *Server) handleDiffBackups(w http.ResponseWriter, r *http.Request) error {
	a, b := r.URL.Query().Get("a"), r.URL.Query().Get("b")
	if a == "" || b == "" {
		return errBadRequest("query parameters \"a\" and \"b\" must both name a backup id (GET /api/v1/backups/diff?a=ID&b=ID)")
	}
	_, sa, err := s.backupWithSettings(a)
	if err != nil {
		return err
	}
	_, sb, err := s.backupWithSettings(b)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, DiffSettings(a, b, sa, sb))
	return nil
}

func (s *Server) handleExport(w http.ResponseWriter, r *http.Request) error {
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
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=\"fleetvault-catalog.%s\"", format))
	if err := s.Catalog.Export(w, format); err != nil {
		// Headers may be gone already; the client sees a truncated body.
		s.log.Error("api: catalog export failed", "format", format, "err", err)
	}
	return nil
}
