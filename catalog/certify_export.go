package catalog

import (
	"encoding/json"
	"time"
)

// The certification tables of an export (docs/spec/catalog.md,
// "Certification"): optional, absent from exports made before them.
var (
	certificationColumns = []string{"piece_id", "state", "decided_by", "decided_at", "note", "reminded_at", "evidence"}
	certPolicyColumns    = []string{"category", "lapse_days", "remind_days"}
)

// dumpCertifications adds the stored certification records and the stored
// (changed from default) policies to d.
func (c *Catalog) dumpCertifications(d *dump) error {
	certs, err := c.Certifications()
	if err != nil {
		return err
	}
	d.Certifications = certRows(certs)
	ps, stored, err := c.CertPolicies()
	if err != nil {
		return err
	}
	for _, p := range ps {
		if stored[p.Category] {
			d.CertPolicies = append(d.CertPolicies, p)
		}
	}
	return nil
}

// loadCertifications stores imported certification records and policies,
// replacing those of the same pieces and categories.
func loadCertifications(recs records, d dump) error {
	for _, rec := range d.Certifications {
		if err := rec.validate(); err != nil {
			return err
		}
		if err := recs.put(bktCertifications, []byte(rec.Piece), rec); err != nil {
			return err
		}
	}
	for _, p := range d.CertPolicies {
		if err := p.validate(); err != nil {
			return err
		}
		if err := recs.put(bktCertPolicies, []byte(p.Category), p); err != nil {
			return err
		}
	}
	return nil
}

// sqlTime is t in the standard's form, or NULL when zero.
func sqlTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return fmtTime(t)
}

// writeCertificationRows adds the certification tables' rows to an SQL
// export.
func writeCertificationRows(sw *sqlWriter, d dump) {
	for _, rec := range d.Certifications {
		var ev any // NULL: no test restore
		if rec.Evidence != nil {
			b, err := json.Marshal(rec.Evidence)
			if err != nil && sw.err == nil {
				sw.err = err
			}
			ev = string(b)
		}
		sw.insert("certifications", certificationColumns, rec.Piece, rec.State, rec.By, sqlTime(rec.At), rec.Note, sqlTime(rec.RemindedAt), ev)
	}
	for _, p := range d.CertPolicies {
		sw.insert("certification_policies", certPolicyColumns, p.Category, int64(p.LapseDays), int64(p.RemindDays))
	}
}

// bindCertifications reads the certification tables of an SQL export.
func bindCertifications(b *rowBinder, rows map[string][]sqlRow, d *dump) {
	for _, r := range rows["certifications"] {
		rec := Certification{Piece: b.s(r, "piece_id"), State: b.s(r, "state"), By: b.s(r, "decided_by"), Note: b.s(r, "note")}
		if b.s(r, "decided_at") != "" {
			rec.At = b.t(r, "decided_at")
		}
		if b.s(r, "reminded_at") != "" {
			rec.RemindedAt = b.t(r, "reminded_at")
		}
		if ev := b.s(r, "evidence"); ev != "" {
			rec.Evidence = &TestEvidence{}
			if err := json.Unmarshal([]byte(ev), rec.Evidence); err != nil {
				b.fail(r, "certification of %s: evidence is not JSON: %v", rec.Piece, err)
			}
		}
		d.Certifications = append(d.Certifications, rec)
	}
	for _, r := range rows["certification_policies"] {
		d.CertPolicies = append(d.CertPolicies, CertPolicy{Category: b.s(r, "category"), LapseDays: int(b.n(r, "lapse_days")), RemindDays: int(b.n(r, "remind_days"))})
	}
}
