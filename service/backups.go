package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/settingsdoc"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// Limits of a backup listing.
const (
	DefaultBackupLimit = 100
	MaxBackupLimit     = 10000
)

// Backups lists the backups bq selects that the caller may see, newest
// first: at most bq.Limit (DefaultBackupLimit when 0).
func (ss *Session) Backups(_ context.Context, bq apiclient.BackupQuery) ([]apiclient.Backup, error) {
	q := catalog.Query{Client: bq.Client, Group: bq.Group, From: bq.From, To: bq.To, Limit: bq.Limit}
	if q.Limit == 0 {
		q.Limit = DefaultBackupLimit
	}
	if q.Limit < 0 || q.Limit > MaxBackupLimit {
		return nil, &FieldError{Field: "limit", Problem: fmt.Sprintf("must be a number from 1 to %d, not %d", MaxBackupLimit, bq.Limit)}
	}
	if bq.Tag != "" {
		k, v, ok := strings.Cut(bq.Tag, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, &FieldError{Field: "tag", Problem: fmt.Sprintf("must be key=value (e.g. tag=zone=South), not %q", bq.Tag)}
		}
		q.TagKey, q.TagValue = tagmatch.NormalizeKey(strings.TrimSpace(k)), strings.TrimSpace(v)
	}
	limit := q.Limit
	var devices, groups map[string]bool
	if ss.id.owner() {
		var err error
		if devices, groups, err = ss.ownerScope(); err != nil {
			return nil, err
		}
		q.Limit = 0 // filter first, then cap
	}
	ps, err := ss.s.cat.Pieces(q)
	if err != nil {
		return nil, fmt.Errorf("query backups: %w", err)
	}
	certs, err := ss.s.cat.Certifications()
	if err != nil {
		return nil, fmt.Errorf("query backups: %w", err)
	}
	out := []apiclient.Backup{}
	for _, p := range ps {
		if len(out) == limit {
			break
		}
		if ss.id.seesPiece(p, devices, groups) {
			out = append(out, withCertification(BackupView(p), p, certs))
		}
	}
	return out, nil
}

// Backup returns one backup the caller may see, with its settings as JSON.
func (ss *Session) Backup(_ context.Context, id string) (apiclient.Backup, error) {
	p, settings, err := ss.backupWithSettings(id)
	if err != nil {
		return apiclient.Backup{}, err
	}
	rec, err := ss.s.cat.Certification(p.ID)
	if err != nil {
		return apiclient.Backup{}, fmt.Errorf("certification of backup %s: %w", p.ID, err)
	}
	b := withCertification(BackupView(p), p, map[string]catalog.Certification{p.ID: rec})
	b.Settings = settingsdoc.JSONValue(settings)
	return b, nil
}

// DiffBackups compares two backups' settings: what b changes relative to a.
// The caller must be able to see both.
func (ss *Session) DiffBackups(_ context.Context, a, b string) (apiclient.Diff, error) {
	if a == "" || b == "" {
		return apiclient.Diff{}, errorf(ErrInvalid, "query parameters \"a\" and \"b\" must both name a backup id (GET /api/v1/backups/diff?a=ID&b=ID)")
	}
	_, sa, err := ss.backupWithSettings(a)
	if err != nil {
		return apiclient.Diff{}, err
	}
	_, sb, err := ss.backupWithSettings(b)
	if err != nil {
		return apiclient.Diff{}, err
	}
	return DiffSettings(a, b, sa, sb), nil
}

// Export writes the whole catalog in format (catalog.FormatJSON or
// FormatSQL). It holds every owner's backups, so only an admin or an
// operator may; an owner reads theirs through Backups.
func (ss *Session) Export(_ context.Context, w io.Writer, format string) error {
	if err := ss.MayExport(); err != nil {
		return err
	}
	return ss.s.cat.Export(w, format)
}

// MayExport says whether Export would be allowed, before anything is written.
func (ss *Session) MayExport() error {
	return ss.id.requireManage("export the whole catalog (it holds every owner's backups); list your backups instead")
}

// backupWithSettings loads a piece the caller may see and decodes its
// settings.
func (ss *Session) backupWithSettings(id string) (catalog.Piece, agent.Settings, error) {
	p, settings, err := BackupSettings(ss.s.cat, id)
	if err == nil && ss.id.owner() {
		devices, groups, serr := ss.ownerScope()
		if serr != nil {
			return p, nil, serr
		}
		if !ss.id.seesPiece(p, devices, groups) {
			err = catalog.ErrNotFound
		}
	}
	if errors.Is(err, catalog.ErrNotFound) {
		return catalog.Piece{}, nil, errorf(ErrNotFound, "no backup %q; list them with GET /api/v1/backups", id)
	}
	return p, settings, err
}

// ownerScope returns the devices and the groups assigned to the caller, an
// owner, from one pass over each.
func (ss *Session) ownerScope() (devices, groups map[string]bool, err error) {
	devices, groups = map[string]bool{}, map[string]bool{}
	err = ss.s.cat.Devices(func(d catalog.Device) error {
		if d.Owner == ss.id.User {
			devices[d.ID] = true
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list devices: %w", err)
	}
	gs, err := ss.s.cat.Groups()
	if err != nil {
		return nil, nil, fmt.Errorf("list groups: %w", err)
	}
	for _, g := range gs {
		if g.Owner == ss.id.User {
			groups[g.Name] = true
		}
	}
	return devices, groups, nil
}

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

// withCertification adds a backup's certification (from certs, by piece
// id) to its view; only backups (settings pieces) have one.
func withCertification(b apiclient.Backup, p catalog.Piece, certs map[string]catalog.Certification) apiclient.Backup {
	if p.Type != catalog.TypeSettings {
		return b
	}
	rec, ok := certs[p.ID]
	if !ok {
		rec = catalog.Certification{Piece: p.ID, State: catalog.CertUnknown}
	}
	b.Certification = backupCertification(rec)
	return b
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
func DiffSettings(a, b string, sa, sb agent.Settings) apiclient.Diff {
	return settingsdoc.DiffSettings(a, b, sa, sb)
}
