package catalog

import (
	"encoding/binary"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// bktAudit is the audit log: an 8-byte big-endian sequence -> AuditEntry as
// JSON (a record frame, sealed in an encrypted installation), in the order
// the changes were made.
var bktAudit = []byte("audit")

// Audit outcomes.
const (
	AuditOK              = "ok"              // the change was made
	AuditRefused         = "refused"         // not allowed for this user: nothing changed
	AuditFailed          = "failed"          // allowed, but it failed: see Detail
	AuditUnauthenticated = "unauthenticated" // no valid token: nothing changed
)

// AuditEntry is one change (or attempted change) to an installation.
type AuditEntry struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	User    string    `json:"user"`
	Role    string    `json:"role,omitempty"`
	Addr    string    `json:"addr,omitempty"` // the client's address; "cli" for the CLI's direct mode
	Action  string    `json:"action"`         // e.g. "device.add", "job.start"
	Objects []string  `json:"objects,omitempty"`
	Outcome string    `json:"outcome"`
	Detail  string    `json:"detail,omitempty"`
}

// AppendAudit appends e to the audit log and returns once the write is
// committed to disk (bbolt fsyncs every commit), so an entry that was
// acknowledged survives a crash. It sets e's Seq, and its Time when zero.
func (c *Catalog) AppendAudit(e AuditEntry) (AuditEntry, error) {
	if err := c.writable(); err != nil {
		return e, err
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	err := update(c.res, "catalog: append to the audit log", func(tx *bbolt.Tx) error {
		var err error
		if e.Seq, err = tx.Bucket(bktAudit).NextSequence(); err != nil {
			return err
		}
		var k [8]byte
		binary.BigEndian.PutUint64(k[:], e.Seq)
		return c.resRecords(tx).put(bktAudit, k[:], e)
	})
	return e, err
}

// AuditQuery selects audit entries; the zero value selects all.
type AuditQuery struct {
	User  string    // only this user's
	Since time.Time // only at or after this time
	Limit int       // at most this many, the latest; 0 = all
}

// Audit returns the audit entries q selects, oldest first.
func (c *Catalog) Audit(q AuditQuery) ([]AuditEntry, error) {
	var out []AuditEntry
	err := view(c.res, "catalog: read the audit log", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bktAudit)
		if b == nil {
			return nil
		}
		recs := c.resRecords(tx)
		cur := b.Cursor()
		for k, v := cur.Last(); k != nil; k, v = cur.Prev() {
			var e AuditEntry
			if err := recs.decode(bktAudit, k, v, &e); err != nil {
				return fmt.Errorf("catalog: audit entry %x: %w", k, err)
			}
			if !q.Since.IsZero() && e.Time.Before(q.Since) {
				break // entries are in time order
			}
			if q.User != "" && e.User != q.User {
				continue
			}
			out = append(out, e)
			if q.Limit > 0 && len(out) == q.Limit {
				break
			}
		}
		return nil
	})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}
