package catalog

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"go.etcd.io/bbolt"
)

// The resource database's certification buckets: a record per backup whose
// certification is not the default (docs/spec/catalog.md, "Certification"),
// and a policy per device category that was changed from its default.
var (
	bktCertifications = []byte("certifications")         // piece id -> JSON Certification
	bktCertPolicies   = []byte("certification-policies") // category -> JSON CertPolicy
)

// TypeSettings is the piece type of a backup (a device's settings), the
// pieces that are certified; snapshots and computed documents are not.
const TypeSettings = "settings"

// Certification states of a backup (a data piece). A backup with no record
// is CertUnknown.
const (
	CertUnknown      = "unknown"
	CertCertified    = "certified"
	CertNotCertified = "not-certified"
)

// CheckCertState returns an error for a state that is not one of the three.
func CheckCertState(s string) error {
	switch s {
	case CertUnknown, CertCertified, CertNotCertified:
		return nil
	}
	return fmt.Errorf("catalog: %w: certification state %q is not %s, %s or %s", ErrInvalid, s, CertUnknown, CertCertified, CertNotCertified)
}

// Device categories (Device.Category): the article's "critical,
// non-critical". "" is non-critical. Certification policies are per
// category, and disaster recovery takes over critical clients only.
const (
	CategoryCritical    = "critical"
	CategoryNonCritical = "non-critical"
)

// CheckCategory returns an error for a category that is not one of the two
// ("" is allowed: non-critical).
func CheckCategory(c string) error {
	switch c {
	case "", CategoryCritical, CategoryNonCritical:
		return nil
	}
	return fmt.Errorf("catalog: %w: category %q is not %s or %s", ErrInvalid, c, CategoryCritical, CategoryNonCritical)
}

// CategoryOf is a device's category for policies: "" is non-critical.
func CategoryOf(d Device) string {
	if d.Category == CategoryCritical {
		return CategoryCritical
	}
	return CategoryNonCritical
}

// OptionalTestBench is the optional device field that marks a device as a
// test bench ("true"): a device a test restore may write.
const OptionalTestBench = "test_bench"

// IsTestBench reports whether d is marked as a test bench.
func IsTestBench(d Device) bool { return d.Optional[OptionalTestBench] == "true" }

// TestEvidence is what a test restore of a backup showed.
type TestEvidence struct {
	Job    string    `json:"job"`             // the restore job
	Into   string    `json:"into"`            // "twin" or the test-bench device
	Device string    `json:"device"`          // the device written (the twin's id for a twin)
	By     string    `json:"by"`              // who ran it
	At     time.Time `json:"at"`              // when it finished
	Error  string    `json:"error,omitempty"` // why it failed; "" when it ran through
	// Verified: the device answered the hash of the settings written
	// (end-to-end verification of the restore).
	Verified bool `json:"verified"`
	// ReadBack: the settings read back from the device afterwards hash as
	// the backup's.
	ReadBack bool `json:"read_back"`
	// RTOMillis is the restore's measured duration: the RTO figure.
	RTOMillis int64 `json:"rto_ms"`
	// The device's settings afterwards: their SHA-256 and size, and the
	// settings themselves (JSON) when at most MaxEvidenceSettings bytes.
	SettingsHash string          `json:"settings_hash,omitempty"`
	SettingsSize int             `json:"settings_size,omitempty"`
	Settings     json.RawMessage `json:"settings,omitempty"`
}

// MaxEvidenceSettings bounds the settings a test restore's evidence keeps in
// full; larger ones are kept as hash and size.
const MaxEvidenceSettings = 16 << 10

// Certification is a backup's certification record. History (who changed
// it when) is the audit log's: every change is audited; the record holds the
// current state, the last test restore's evidence, and the sweep's marks.
type Certification struct {
	Piece    string        `json:"piece"`
	State    string        `json:"state"`
	By       string        `json:"by,omitempty"` // who set the state ("fleetvault" for a lapse)
	At       time.Time     `json:"at,omitzero"`  // when
	Note     string        `json:"note,omitempty"`
	Evidence *TestEvidence `json:"evidence,omitempty"`
	// RemindedAt is when the owner was last reminded (while unknown), so a
	// restarted sweep does not remind early.
	RemindedAt time.Time `json:"reminded_at,omitzero"`
}

// CertPolicy is the certification policy of a device category: a certified
// backup of that category lapses to unknown after LapseDays (0: never);
// while unknown its owner is reminded every RemindDays (0: never).
type CertPolicy struct {
	Category   string `json:"category"`
	LapseDays  int    `json:"lapse_days"`
	RemindDays int    `json:"remind_days"`
}

// DefaultCertPolicy is a category's policy until one is stored: critical
// certifications lapse after 90 days with weekly reminders; non-critical
// ones never lapse, with reminders every 30 days.
func DefaultCertPolicy(category string) CertPolicy {
	if category == CategoryCritical {
		return CertPolicy{Category: CategoryCritical, LapseDays: 90, RemindDays: 7}
	}
	return CertPolicy{Category: CategoryNonCritical, RemindDays: 30}
}

func (p CertPolicy) validate() error {
	if p.Category != CategoryCritical && p.Category != CategoryNonCritical {
		return CheckCategory(p.Category + "?") // names the two
	}
	if p.LapseDays < 0 || p.RemindDays < 0 || p.LapseDays > 36500 || p.RemindDays > 36500 {
		return fmt.Errorf("catalog: certification policy %s: %w: days must be from 0 to 36500 (lapse %d, remind %d)", p.Category, ErrInvalid, p.LapseDays, p.RemindDays)
	}
	return nil
}

func (c Certification) validate() error {
	if c.Piece == "" {
		return fmt.Errorf("catalog: certification: %w: no piece id", ErrInvalid)
	}
	return CheckCertState(c.State)
}

// PutCertification stores a backup's certification record, replacing any.
func (c *Catalog) PutCertification(rec Certification) error {
	if err := c.writable(); err != nil {
		return err
	}
	if err := rec.validate(); err != nil {
		return err
	}
	return update(c.res, "catalog: put certification of "+rec.Piece, func(tx *bbolt.Tx) error {
		return c.resRecords(tx).put(bktCertifications, []byte(rec.Piece), rec)
	})
}

// UpdateCertification reads the record of piece (an unknown one when there
// is none), lets fn change it, and stores it, in one transaction.
func (c *Catalog) UpdateCertification(piece string, fn func(*Certification) error) (Certification, error) {
	var out Certification
	if err := c.writable(); err != nil {
		return out, err
	}
	err := update(c.res, "catalog: update certification of "+piece, func(tx *bbolt.Tx) error {
		recs := c.resRecords(tx)
		rec, err := getCertification(recs, piece)
		if err != nil {
			return err
		}
		if err := fn(&rec); err != nil {
			return err
		}
		if err := rec.validate(); err != nil {
			return err
		}
		out = rec
		return recs.put(bktCertifications, []byte(piece), rec)
	})
	return out, err
}

// Certification returns the record of piece: State CertUnknown and nothing
// else when there is none.
func (c *Catalog) Certification(piece string) (Certification, error) {
	var out Certification
	err := view(c.res, "catalog: certification of "+piece, func(tx *bbolt.Tx) error {
		var err error
		out, err = getCertification(c.resRecords(tx), piece)
		return err
	})
	return out, err
}

// Certifications returns every stored certification record, by piece id.
func (c *Catalog) Certifications() (map[string]Certification, error) {
	out := map[string]Certification{}
	err := view(c.res, "catalog: certifications", func(tx *bbolt.Tx) error {
		return c.resRecords(tx).each(bktCertifications, func(k []byte, decode func(any) error) error {
			rec, err := decodeCertification(k, decode)
			out[rec.Piece] = rec
			return err
		})
	})
	return out, err
}

// DeleteCertification removes the record of piece (Prune does, with the
// piece); no record is no error.
func (c *Catalog) DeleteCertification(piece string) error {
	if err := c.writable(); err != nil {
		return err
	}
	return update(c.res, "catalog: delete certification of "+piece, func(tx *bbolt.Tx) error {
		return tx.Bucket(bktCertifications).Delete([]byte(piece))
	})
}

// dropCertifications removes the records of pruned pieces, in one
// transaction.
func (c *Catalog) dropCertifications(gone []PrunedPiece, certs map[string]Certification) error {
	var ids []string
	for _, p := range gone {
		if _, ok := certs[p.ID]; ok {
			ids = append(ids, p.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	return update(c.res, "catalog: prune certifications", func(tx *bbolt.Tx) error {
		for _, id := range ids {
			if err := tx.Bucket(bktCertifications).Delete([]byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
}

func getCertification(recs records, piece string) (Certification, error) {
	rec := Certification{Piece: piece, State: CertUnknown}
	found, err := recs.get(bktCertifications, []byte(piece), &rec)
	if err != nil || !found {
		return rec, err
	}
	return rec, checkCertificationKey([]byte(piece), rec)
}

func decodeCertification(k []byte, decode func(any) error) (Certification, error) {
	var rec Certification
	if err := decode(&rec); err != nil {
		return rec, err
	}
	return rec, checkCertificationKey(k, rec)
}

func checkCertificationKey(k []byte, rec Certification) error {
	if string(k) != rec.Piece {
		return fmt.Errorf("catalog: certification %q: %w: record names piece %q", k, ErrCorrupt, rec.Piece)
	}
	if err := CheckCertState(rec.State); err != nil {
		return fmt.Errorf("catalog: certification %q: %w: %v", k, ErrCorrupt, err)
	}
	return nil
}

// SetCertPolicy stores a category's certification policy.
func (c *Catalog) SetCertPolicy(p CertPolicy) error {
	if err := c.writable(); err != nil {
		return err
	}
	if err := p.validate(); err != nil {
		return err
	}
	return update(c.res, "catalog: set certification policy "+p.Category, func(tx *bbolt.Tx) error {
		return c.resRecords(tx).put(bktCertPolicies, []byte(p.Category), p)
	})
}

// CertPolicies returns the policy of each category (critical, then
// non-critical), stored or default; stored reports which were stored.
func (c *Catalog) CertPolicies() (policies []CertPolicy, stored map[string]bool, err error) {
	byCat := map[string]CertPolicy{}
	stored = map[string]bool{}
	err = view(c.res, "catalog: certification policies", func(tx *bbolt.Tx) error {
		return c.resRecords(tx).each(bktCertPolicies, func(k []byte, decode func(any) error) error {
			var p CertPolicy
			if err := decode(&p); err != nil {
				return err
			}
			if string(k) != p.Category || p.validate() != nil {
				return fmt.Errorf("catalog: certification policy %q: %w: record is %+v", k, ErrCorrupt, p)
			}
			byCat[p.Category], stored[p.Category] = p, true
			return nil
		})
	})
	for _, cat := range []string{CategoryCritical, CategoryNonCritical} {
		p, ok := byCat[cat]
		if !ok {
			p = DefaultCertPolicy(cat)
		}
		policies = append(policies, p)
	}
	return policies, stored, err
}

// CertPolicyFor returns the policy of category ("" is non-critical).
func (c *Catalog) CertPolicyFor(category string) (CertPolicy, error) {
	ps, _, err := c.CertPolicies()
	if err != nil {
		return CertPolicy{}, err
	}
	if category != CategoryCritical {
		category = CategoryNonCritical
	}
	for _, p := range ps {
		if p.Category == category {
			return p, nil
		}
	}
	return DefaultCertPolicy(category), nil
}

// LatestBackup returns a client's newest backup (piece of type
// TypeSettings): its current backup, the one certification reminders and a
// group's derived state look at; ErrNotFound when it has none.
func (c *Catalog) LatestBackup(client string) (Piece, error) {
	if p, err := c.Latest(client); err != nil || p.Type == TypeSettings {
		return p, err // usually the newest piece is a backup: one lookup
	}
	return c.LatestAsOf(client, TypeSettings, time.Time{})
}

// newestCertified returns, per client, the id of its newest certified piece
// among series (pieces grouped as Prune reads them): the piece retention
// must keep.
func newestCertified(series map[string][]Piece, certs map[string]Certification) map[string]string {
	newest := map[string]Piece{}
	for _, ps := range series {
		for _, p := range ps {
			if certs[p.ID].State != CertCertified {
				continue
			}
			if old, ok := newest[p.Client]; !ok || p.Time.After(old.Time) || (p.Time.Equal(old.Time) && p.ID > old.ID) {
				newest[p.Client] = p
			}
		}
	}
	out := make(map[string]string, len(newest))
	for client, p := range newest {
		out[client] = p.ID
	}
	return out
}

// certRows orders certification records by piece id, for exports.
func certRows(m map[string]Certification) []Certification {
	out := make([]Certification, 0, len(m))
	for _, c := range m {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Piece < out[j].Piece })
	return out
}
