package api

import (
	"github.com/fleetvault/fleetvault/apiclient"

	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/tagmatch"
)

const (
	defaultBackupLimit = 100
	maxBackupLimit     = 10000
)

// BackupView is how the API shows a catalog piece (without its settings).
func BackupView(p catalog.Piece) apiclient.Backup {
	b := apiclient.Backup{ID: p.ID, Client: p.Client, Name: p.Name, Type: p.Type, Owner: p.Owner, Location: p.Location,
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

func (s *API) handleListBackups(w http.ResponseWriter, r *http.Request) error {
	q, err := backupQuery(r)
	if err != nil {
		return err
	}
	ps, err := s.Catalog.Pieces(q)
	if err != nil {
		return fmt.Errorf("query backups: %w", err)
	}
	out := make([]apiclient.Backup, len(ps))
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

func (s *API) handleGetBackup(w http.ResponseWriter, r *http.Request) error {
	p, settings, err := s.backupWithSettings(r.PathValue("id"))
	if err != nil {
		return err
	}
	b := BackupView(p)
	b.Settings = jsonValue(settings)
	writeJSON(w, http.StatusOK, b)
	return nil
}

// backupWithSettings loads a piece and decodes its settings.
func (s *API) backupWithSettings(id string) (catalog.Piece, agent.Settings, error) {
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
func SettingsJSON(s agent.Settings) any { return jsonValue(s) }

// DiffSettings says how the settings of backup b differ from those of a:
// keys added, removed and changed, by JSON Pointer path.
func DiffSettings(a, b string, sa, sb agent.Settings) apiclient.Diff {
	d := apiclient.Diff{A: a, B: b, Added: []apiclient.Change{}, Removed: []apiclient.Change{}, Changed: []apiclient.Change{}}
	diffValues("", jsonValue(sa), jsonValue(sb), &d)
	d.Same = len(d.Added)+len(d.Removed)+len(d.Changed) == 0
	return d
}

func (s *API) handleDiffBackups(w http.ResponseWriter, r *http.Request) error {
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

// diffValues records how b differs from a under path, recursing into
// objects; arrays and scalars are compared whole.
func diffValues(path string, a, b any, d *apiclient.Diff) {
	ma, aok := a.(map[string]any)
	mb, bok := b.(map[string]any)
	if aok && bok {
		keys := map[string]bool{}
		for k := range ma {
			keys[k] = true
		}
		for k := range mb {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			p := path + "/" + pointerEscape(k)
			va, ina := ma[k]
			vb, inb := mb[k]
			switch {
			case !ina:
				d.Added = append(d.Added, apiclient.Change{Path: p, To: vb})
			case !inb:
				d.Removed = append(d.Removed, apiclient.Change{Path: p, From: va})
			default:
				diffValues(p, va, vb, d)
			}
		}
		return
	}
	if !equalJSON(a, b) {
		d.Changed = append(d.Changed, apiclient.Change{Path: path, From: a, To: b})
	}
}

func pointerEscape(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

func equalJSON(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !equalJSON(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return fmt.Sprintf("%T:%v", a, a) == fmt.Sprintf("%T:%v", b, b)
}

// jsonValue turns a decoded CBOR value into one encoding/json can write:
// maps get string keys, byte strings become base64 text, NaN and infinities
// become text, big integers become decimal text.
func jsonValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[k] = jsonValue(val)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[fmt.Sprint(k)] = jsonValue(val)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = jsonValue(val)
		}
		return out
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
		return x
	case float32:
		return jsonValue(float64(x))
	case big.Int:
		return x.String()
	case *big.Int:
		return x.String()
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case nil, bool, string, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return x
	}
	return fmt.Sprint(v) // tags and other CBOR oddities, as text
}

func (s *API) handleExport(w http.ResponseWriter, r *http.Request) error {
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
