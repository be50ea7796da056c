package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/notify"
)

// Certification of backups (docs/spec/catalog.md, "Certification"): a data
// owner certifies a backup, or refuses it, after a test restore. The rules:
//
//   - who decides: the backup's data owner (an owner who sees it) or an
//     admin; an operator runs test restores but does not certify, since the
//     article makes certification the data owner's word;
//   - history: the record holds the current state; every change (and every
//     refused attempt) is in the audit log, which is the history;
//   - the policy of the device's category says when a certification lapses
//     and how often the owner is reminded (CertificationSweep).

// Limits of a certification listing.
const (
	DefaultCertLimit = 1000
	MaxCertLimit     = 10000
	maxCertNote      = 2000
)

// sweepUser is who the audit log names for the sweep's changes.
const sweepUser = "fleetvault"

// Certification returns a backup's certification.
func (ss *Session) Certification(_ context.Context, backup string) (apiclient.Certification, error) {
	p, err := ss.piece(backup)
	if err != nil {
		return apiclient.Certification{}, err
	}
	rec, err := ss.s.cat.Certification(p.ID)
	if err != nil {
		return apiclient.Certification{}, fmt.Errorf("certification of backup %s: %w", p.ID, err)
	}
	cc, err := ss.s.certContext()
	if err != nil {
		return apiclient.Certification{}, err
	}
	return cc.view(p, rec), nil
}

// Certify records the data owner's decision on a backup: certified or
// not-certified, with a note. A refusal tells the owner and the admins
// (notify.NotCertified). Only the backup's owner or an admin may.
func (ss *Session) Certify(_ context.Context, backup string, req apiclient.CertifyRequest) (apiclient.Certification, error) {
	var out apiclient.Certification
	err := ss.audited("backup.certify", []string{backup, "state=" + req.State}, func() error {
		if req.State != catalog.CertCertified && req.State != catalog.CertNotCertified {
			return &FieldError{Field: "state", Problem: fmt.Sprintf("must be %q or %q, not %q", catalog.CertCertified, catalog.CertNotCertified, req.State)}
		}
		if len(req.Note) > maxCertNote {
			return &FieldError{Field: "note", Problem: fmt.Sprintf("must be at most %d bytes, not %d", maxCertNote, len(req.Note))}
		}
		p, err := ss.piece(backup)
		if err != nil {
			return err
		}
		if ss.id.Role == RoleOperator {
			return ss.id.forbid("certify backups; the data owner (or an admin) certifies")
		}
		now := ss.s.now()
		rec, err := ss.s.cat.UpdateCertification(p.ID, func(r *catalog.Certification) error {
			r.State, r.By, r.At, r.Note, r.RemindedAt = req.State, ss.id.User, now, req.Note, time.Time{}
			return nil
		})
		if err != nil {
			return fmt.Errorf("certify backup %s: %w", p.ID, err)
		}
		cc, err := ss.s.certContext()
		if err != nil {
			return err
		}
		out = cc.view(p, rec)
		if req.State == catalog.CertNotCertified {
			ss.s.emit(notify.Event{Kind: notify.NotCertified, Time: now, Backup: p.ID, BackupTime: p.Time, Device: p.Client, Group: p.Group,
				Owner: out.Owner, By: ss.id.User, Note: req.Note})
		}
		ss.s.log.Info("backup certification set", "backup", p.ID, "state", req.State, "user", ss.id.User)
		return nil
	})
	return out, err
}

// Certifications lists the certifications of the backups (settings pieces)
// the caller may see, newest backup first, filtered by q.
func (ss *Session) Certifications(_ context.Context, q apiclient.CertificationQuery) ([]apiclient.Certification, error) {
	if q.State != "" {
		if err := catalog.CheckCertState(q.State); err != nil {
			return nil, &FieldError{Field: "state", Problem: fmt.Sprintf("must be %s, %s or %s, not %q", catalog.CertUnknown, catalog.CertCertified, catalog.CertNotCertified, q.State)}
		}
	}
	limit := q.Limit
	if limit == 0 {
		limit = DefaultCertLimit
	}
	if limit < 0 || limit > MaxCertLimit {
		return nil, &FieldError{Field: "limit", Problem: fmt.Sprintf("must be a number from 1 to %d, not %d", MaxCertLimit, q.Limit)}
	}
	if q.Group != "" {
		if _, err := ss.backupGroup(q.Group); err != nil {
			return nil, err
		}
	}
	ps, err := ss.s.cat.Pieces(catalog.Query{Client: q.Client, Group: q.Group})
	if err != nil {
		return nil, fmt.Errorf("query backups: %w", err)
	}
	var devices, groups map[string]bool
	if ss.id.owner() {
		if devices, groups, err = ss.ownerScope(); err != nil {
			return nil, err
		}
	}
	cc, err := ss.s.certContext()
	if err != nil {
		return nil, err
	}
	out := []apiclient.Certification{}
	for _, p := range ps {
		if len(out) == limit {
			break
		}
		if p.Type != catalog.TypeSettings || !ss.id.seesPiece(p, devices, groups) {
			continue
		}
		v := cc.view(p, cc.record(p.ID))
		if (q.State == "" || v.State == q.State) && (!q.Current || v.Current) {
			out = append(out, v)
		}
	}
	return out, nil
}

// GroupCertification derives a backup group's certification from its
// current backups (the newest of each device): certified if all are,
// not-certified if any is, else unknown.
func (ss *Session) GroupCertification(_ context.Context, group string) (apiclient.GroupCertification, error) {
	g, err := ss.backupGroup(group)
	if err != nil {
		return apiclient.GroupCertification{}, err
	}
	ps, err := ss.s.cat.Candidates(g.Name)
	if err != nil {
		return apiclient.GroupCertification{}, fmt.Errorf("current backups of group %s: %w", g.Name, err)
	}
	cc, err := ss.s.certContext()
	if err != nil {
		return apiclient.GroupCertification{}, err
	}
	out := apiclient.GroupCertification{Group: g.Name, Backups: []apiclient.Certification{},
		Counts: map[string]int{catalog.CertUnknown: 0, catalog.CertCertified: 0, catalog.CertNotCertified: 0}}
	for _, p := range ps {
		v := cc.view(p, cc.record(p.ID))
		v.Current = true // the group's newest of its device
		out.Backups = append(out.Backups, v)
		out.Counts[v.State]++
	}
	out.State = GroupCertState(out.Counts)
	return out, nil
}

// GroupCertState is the derived state of a set of backups from its counts
// by state: not-certified if any is, certified if all are (and there is at
// least one), else unknown.
func GroupCertState(counts map[string]int) string {
	switch {
	case counts[catalog.CertNotCertified] > 0:
		return catalog.CertNotCertified
	case counts[catalog.CertCertified] > 0 && counts[catalog.CertUnknown] == 0:
		return catalog.CertCertified
	}
	return catalog.CertUnknown
}

// CertificationPolicies returns the policy of each device category.
// Everyone may read them: they say when their reminders come.
func (ss *Session) CertificationPolicies(_ context.Context) ([]apiclient.CertPolicy, error) {
	ps, stored, err := ss.s.cat.CertPolicies()
	if err != nil {
		return nil, fmt.Errorf("certification policies: %w", err)
	}
	out := make([]apiclient.CertPolicy, len(ps))
	for i, p := range ps {
		out[i] = apiclient.CertPolicy{Category: p.Category, LapseDays: p.LapseDays, RemindDays: p.RemindDays, Default: !stored[p.Category]}
	}
	return out, nil
}

// SetCertificationPolicy stores a category's policy; only an admin may.
func (ss *Session) SetCertificationPolicy(_ context.Context, p apiclient.CertPolicy) (apiclient.CertPolicy, error) {
	err := ss.audited("certification.policy", []string{p.Category, fmt.Sprintf("lapse_days=%d", p.LapseDays), fmt.Sprintf("remind_days=%d", p.RemindDays)}, func() error {
		if err := ss.id.requireAdmin("set certification policies"); err != nil {
			return err
		}
		if p.Category != catalog.CategoryCritical && p.Category != catalog.CategoryNonCritical {
			return &FieldError{Field: "category", Problem: fmt.Sprintf("must be %s or %s, not %q", catalog.CategoryCritical, catalog.CategoryNonCritical, p.Category)}
		}
		for _, f := range []struct {
			name string
			v    int
		}{{"lapse_days", p.LapseDays}, {"remind_days", p.RemindDays}} {
			if f.v < 0 || f.v > 36500 {
				return &FieldError{Field: f.name, Problem: fmt.Sprintf("must be a number of days from 0 (never) to 36500, not %d", f.v)}
			}
		}
		return ss.s.cat.SetCertPolicy(catalog.CertPolicy{Category: p.Category, LapseDays: p.LapseDays, RemindDays: p.RemindDays})
	})
	p.Default = false
	return p, err
}

// piece looks up a backup the caller may see, or returns ErrNotFound worded
// as for one that does not exist.
func (ss *Session) piece(id string) (catalog.Piece, error) {
	p, err := ss.s.cat.Piece(id)
	if err == nil && ss.id.owner() {
		devices, groups, serr := ss.ownerScope()
		if serr != nil {
			return p, serr
		}
		if !ss.id.seesPiece(p, devices, groups) {
			err = catalog.ErrNotFound
		}
	}
	if errors.Is(err, catalog.ErrNotFound) {
		return catalog.Piece{}, errorf(ErrNotFound, "no backup %q; list them with GET /api/v1/backups", id)
	}
	if err != nil {
		return p, fmt.Errorf("look up backup %s: %w", id, err)
	}
	return p, nil
}

// backupGroup looks up a backup group the caller may see.
func (ss *Session) backupGroup(name string) (catalog.Group, error) {
	g, err := ss.s.cat.Group(name)
	if err == nil && (!ss.id.ownsGroup(g) || g.Kind != catalog.GroupBackup) {
		err = catalog.ErrNotFound
	}
	if errors.Is(err, catalog.ErrNotFound) {
		return g, errorf(ErrNotFound, "no backup group %q; list them with GET /api/v1/groups", name)
	}
	if err != nil {
		return g, fmt.Errorf("look up group %s: %w", name, err)
	}
	return g, nil
}

// certContext is what certification views need, read once per request:
// the policies, the devices (category, owner) and the stored records.
type certContext struct {
	policies map[string]catalog.CertPolicy
	devices  map[string]catalog.Device
	records  map[string]catalog.Certification
	latest   map[string]string // client -> id of its newest settings piece, filled lazily
	cat      *catalog.Catalog
}

func (s *Service) certContext() (*certContext, error) {
	devices := map[string]catalog.Device{}
	err := s.cat.Devices(func(d catalog.Device) error { devices[d.ID] = d; return nil })
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return s.certContextOf(devices)
}

// certContextOf is certContext over devices the caller has read already
// (the overview: the caller's own), so the devices are not read twice.
func (s *Service) certContextOf(devices map[string]catalog.Device) (*certContext, error) {
	cc := &certContext{policies: map[string]catalog.CertPolicy{}, devices: devices, latest: map[string]string{}, cat: s.cat}
	ps, _, err := s.cat.CertPolicies()
	if err != nil {
		return nil, fmt.Errorf("certification policies: %w", err)
	}
	for _, p := range ps {
		cc.policies[p.Category] = p
	}
	if cc.records, err = s.cat.Certifications(); err != nil {
		return nil, fmt.Errorf("certifications: %w", err)
	}
	return cc, nil
}

// record is the stored record of piece, or an unknown one.
func (cc *certContext) record(piece string) catalog.Certification {
	if r, ok := cc.records[piece]; ok {
		return r
	}
	return catalog.Certification{Piece: piece, State: catalog.CertUnknown}
}

// policy is the policy of a client's category.
func (cc *certContext) policy(client string) catalog.CertPolicy {
	return cc.policies[catalog.CategoryOf(cc.devices[client])]
}

// current reports whether p is the newest settings piece of its client.
func (cc *certContext) current(p catalog.Piece) bool {
	id, ok := cc.latest[p.Client]
	if !ok {
		if lp, err := cc.cat.LatestBackup(p.Client); err == nil {
			id = lp.ID
		}
		cc.latest[p.Client] = id
	}
	return id == p.ID
}

// owner is who is told about a backup: its piece_owner, else the owner of
// its device, else the owner of its backup group ("" when none: the sink
// tells the admins).
func (cc *certContext) owner(p catalog.Piece) string {
	if p.Owner != "" {
		return p.Owner
	}
	if d, ok := cc.devices[p.Client]; ok && d.Owner != "" {
		return d.Owner
	}
	if p.Group != "" {
		if g, err := cc.cat.Group(p.Group); err == nil {
			return g.Owner
		}
	}
	return ""
}

// view is how the API shows a backup's certification.
func (cc *certContext) view(p catalog.Piece, rec catalog.Certification) apiclient.Certification {
	v := apiclient.Certification{Backup: p.ID, Client: p.Client, Group: p.Group, Owner: cc.owner(p), Category: catalog.CategoryOf(cc.devices[p.Client]),
		BackupTime: p.Time, Current: cc.current(p), State: rec.State, By: rec.By, Note: rec.Note, Evidence: rec.Evidence}
	if !rec.At.IsZero() {
		at := rec.At
		v.At = &at
	}
	if !rec.RemindedAt.IsZero() {
		r := rec.RemindedAt
		v.RemindedAt = &r
	}
	v.LapsesAt = cc.lapses(p, rec)
	return v
}

// lapses is when rec, the certification of p, lapses under its device's
// policy; nil when it does not.
func (cc *certContext) lapses(p catalog.Piece, rec catalog.Certification) *time.Time {
	if pol := cc.policy(p.Client); rec.State == catalog.CertCertified && pol.LapseDays > 0 && !rec.At.IsZero() {
		l := lapseTime(rec, pol)
		return &l
	}
	return nil
}

// lapseTime is when a certified record lapses under pol.
func lapseTime(rec catalog.Certification, pol catalog.CertPolicy) time.Time {
	return rec.At.Add(time.Duration(pol.LapseDays) * 24 * time.Hour)
}

// backupCertification is the certification a backup listing shows.
func backupCertification(rec catalog.Certification) *apiclient.BackupCertification {
	bc := &apiclient.BackupCertification{State: rec.State, By: rec.By}
	if !rec.At.IsZero() {
		at := rec.At
		bc.At = &at
	}
	return bc
}
