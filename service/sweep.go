package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/notify"
)

// SweepReport says what a certification sweep did.
type SweepReport struct {
	Lapsed   []string // backups whose certification lapsed to unknown
	Reminded []string // backups whose owner was reminded
	Checked  int      // current backups looked at for reminders
	// Current counts the current backups (the newest of each device) by
	// certification state after the sweep.
	Current map[string]int
}

// CertificationSweep applies the certification policies at now:
//
//   - a certified backup of a category whose policy lapses (critical, by
//     default after 90 days) goes back to unknown LapseDays after it was
//     certified, and its owner is told (notify.CertificationLapsed);
//   - the owner of a current backup (the newest of its device) whose
//     certification is unknown is reminded (notify.CertificationReminder)
//     every RemindDays, counted from the backup, its last change or the
//     last reminder, whichever is latest.
//
// Each change is stored (and a reminder's time recorded) before the event is
// emitted, so a sweep is idempotent and a restarted one neither repeats nor
// advances a reminder. serve runs it hourly and at start.
func (s *Service) CertificationSweep(ctx context.Context, now time.Time) (SweepReport, error) {
	rep := SweepReport{Current: map[string]int{catalog.CertUnknown: 0, catalog.CertCertified: 0, catalog.CertNotCertified: 0}}
	cc, err := s.certContext()
	if err != nil {
		return rep, err
	}
	for _, rec := range cc.records {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		lapsed, err := s.lapse(cc, rec, now)
		if err != nil {
			return rep, err
		}
		if lapsed {
			rep.Lapsed = append(rep.Lapsed, rec.Piece)
		}
	}
	for id := range cc.devices {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		p, err := s.cat.LatestBackup(id)
		if errors.Is(err, catalog.ErrNotFound) {
			continue
		}
		if err != nil {
			return rep, fmt.Errorf("certification sweep: newest backup of %s: %w", id, err)
		}
		rep.Checked++
		reminded, err := s.remind(cc, p, now)
		if err != nil {
			return rep, err
		}
		if reminded {
			rep.Reminded = append(rep.Reminded, p.ID)
		}
		rep.Current[cc.record(p.ID).State]++
	}
	if len(rep.Lapsed)+len(rep.Reminded) > 0 {
		s.log.Info("certification sweep", "lapsed", len(rep.Lapsed), "reminded", len(rep.Reminded), "checked", rep.Checked)
	}
	return rep, nil
}

// lapse turns rec back to unknown when its policy says it is due.
func (s *Service) lapse(cc *certContext, rec catalog.Certification, now time.Time) (bool, error) {
	if rec.State != catalog.CertCertified || rec.At.IsZero() {
		return false, nil
	}
	p, err := s.cat.Piece(rec.Piece)
	if errors.Is(err, catalog.ErrNotFound) {
		return false, nil // pruned meanwhile; Prune drops its record
	}
	if err != nil {
		return false, fmt.Errorf("certification sweep: backup %s: %w", rec.Piece, err)
	}
	pol := cc.policy(p.Client)
	if pol.LapseDays == 0 || now.Before(lapseTime(rec, pol)) {
		return false, nil
	}
	note := fmt.Sprintf("certification by %s lapsed: %s certifications lapse after %d days", rec.By, pol.Category, pol.LapseDays)
	updated, err := s.cat.UpdateCertification(rec.Piece, func(r *catalog.Certification) error {
		if r.State != catalog.CertCertified || !r.At.Equal(rec.At) {
			return errChanged
		}
		r.State, r.By, r.At, r.Note, r.RemindedAt = catalog.CertUnknown, sweepUser, now, note, time.Time{}
		return nil
	})
	if errors.Is(err, errChanged) {
		return false, nil // certified again meanwhile
	}
	if err != nil {
		return false, fmt.Errorf("certification sweep: lapse backup %s: %w", rec.Piece, err)
	}
	cc.records[rec.Piece] = updated
	s.auditSweep("backup.certification-lapse", p.ID, note)
	s.emit(notify.Event{Kind: notify.CertificationLapsed, Time: now, Backup: p.ID, BackupTime: p.Time, Device: p.Client, Group: p.Group,
		Owner: cc.owner(p), By: rec.By, Note: rec.Note, Since: rec.At})
	return true, nil
}

// remind reminds the owner of p, a current backup, when its certification
// is unknown and its policy's reminder is due.
func (s *Service) remind(cc *certContext, p catalog.Piece, now time.Time) (bool, error) {
	rec := cc.record(p.ID)
	pol := cc.policy(p.Client)
	if rec.State != catalog.CertUnknown || pol.RemindDays == 0 {
		return false, nil
	}
	since := latest(p.Time, rec.At)
	due := latest(since, rec.RemindedAt).Add(time.Duration(pol.RemindDays) * 24 * time.Hour)
	if now.Before(due) {
		return false, nil
	}
	_, err := s.cat.UpdateCertification(p.ID, func(r *catalog.Certification) error {
		if r.State != catalog.CertUnknown || !r.RemindedAt.Equal(rec.RemindedAt) {
			return errChanged
		}
		r.RemindedAt = now
		return nil
	})
	if errors.Is(err, errChanged) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("certification sweep: remind about backup %s: %w", p.ID, err)
	}
	s.emit(notify.Event{Kind: notify.CertificationReminder, Time: now, Backup: p.ID, BackupTime: p.Time, Device: p.Client, Group: p.Group,
		Owner: cc.owner(p), Since: since})
	return true, nil
}

// errChanged stops an update whose record changed since it was read.
var errChanged = errors.New("certification changed meanwhile")

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// auditSweep records a change the sweep made.
func (s *Service) auditSweep(action, object, detail string) {
	e := catalog.AuditEntry{User: sweepUser, Addr: "sweep", Action: action, Objects: []string{object}, Outcome: catalog.AuditOK, Detail: detail}
	if _, err := s.cat.AppendAudit(e); err != nil {
		s.log.Error("audit: append failed", "action", action, "err", err)
	}
}
