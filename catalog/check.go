package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/fleetvault/fleetvault/settingsdoc"
	"io/fs"
	"os"
	"time"

	"go.etcd.io/bbolt"

	"github.com/fleetvault/fleetvault/catalog/dedupe"
	"github.com/fleetvault/fleetvault/catalog/frame"
)

// Problem is one damaged object found by Check: a file, a page, a record, an
// index entry or a content object, named so a person can find it.
type Problem struct {
	Object string
	Err    error
}

func (p Problem) String() string { return p.Object + ": " + p.Err.Error() }

// Verify checks the installation whose MBR is at mbrPath without trusting its
// files: each bbolt file's meta pages and length are checked before it is
// opened, the installation is opened read-only with faults turned into
// errors, and then Catalog.Check runs. Problems go to report; the error is
// for a failure to check at all (an unreadable MBR).
func Verify(mbrPath string, opts Options, readData bool, report func(Problem)) error {
	m, err := ReadMBR(mbrPath)
	if err != nil {
		return err
	}
	files := []string{m.Path(m.Resources), m.Path(m.Catalog)}
	for _, n := range m.CatalogNames()[1:] {
		files = append(files, m.Path(m.Catalogs[n]))
	}
	bad := false
	for _, f := range append(files, m.Path(m.Journal)) {
		if _, err := os.Stat(f); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				err = &MissingError{Path: f, What: "file the MBR names"}
			}
			report(Problem{Object: f, Err: err})
			bad = true
			continue
		}
		for _, err := range rawCheck(f) {
			report(Problem{Object: f, Err: err})
			bad = true
		}
	}
	if bad {
		return nil
	}
	if err := verifyJournal(m.Path(m.Journal), opts.LockTimeout, report); err != nil {
		return err
	}
	opts.ReadOnly = true
	c, err := Open(mbrPath, opts)
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			report(Problem{Object: mbrPath, Err: err})
			return nil
		}
		return err // e.g. locked by a running server: not damage
	}
	defer c.Close()
	return c.Check(readData, report)
}

// verifyJournal checks the job journal, a file whose records are all
// frames: its pages, then every record's frame.
func verifyJournal(path string, lockTimeout time.Duration, report func(Problem)) error {
	db, err := OpenFile(path, "job journal", FileOptions{ReadOnly: true, LockTimeout: lockTimeout})
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			report(Problem{Object: path, Err: err})
			return nil
		}
		return err
	}
	defer db.Close()
	if !walkFile(db, path, report) {
		return nil
	}
	if err := view(db, "catalog: check "+path, func(tx *bbolt.Tx) error {
		checkFrames(tx, path, nil, report)
		return nil
	}); err != nil {
		report(Problem{Object: path, Err: err})
	}
	return nil
}

// Check verifies the resource database and every catalog: bbolt's page
// structure, every record, every index entry against its record, and the
// content store; with readData every content object is read and its hash
// checked. Each damaged object is reported; the error is for a failure to
// check at all.
func (c *Catalog) Check(readData bool, report func(Problem)) error {
	resPath := c.mbr.Path(c.mbr.Resources)
	if walkFile(c.res, resPath, report) {
		err := view(c.res, "catalog: check "+resPath, func(tx *bbolt.Tx) error {
			c.checkResources(tx, resPath, report)
			return nil
		})
		if err != nil {
			report(Problem{Object: resPath, Err: err})
		}
	}
	for _, s := range c.shards {
		if !walkFile(s.db, s.path, report) {
			continue
		}
		err := view(s.db, "catalog: check "+s.label(), func(tx *bbolt.Tx) error {
			s.checkPieces(tx, c.store, readData, report)
			return c.store.Check(tx, readData, func(p dedupe.Problem) {
				report(Problem{Object: s.path + ": content " + p.Object, Err: p.Err})
			})
		})
		if err != nil {
			report(Problem{Object: s.path, Err: err})
		}
	}
	return nil
}

// walkFile reads every key of every bucket under guard (so a damaged page
// becomes a Problem, not a crash), then runs bbolt's own structural check.
// It reports whether the file is sound enough for record checks.
func walkFile(db *bbolt.DB, path string, report func(Problem)) bool {
	err := view(db, "walk "+path, func(tx *bbolt.Tx) error {
		var walk func(b *bbolt.Bucket, name string) error
		walk = func(b *bbolt.Bucket, name string) error {
			return b.ForEach(func(k, v []byte) error {
				if v == nil {
					if nb := b.Bucket(k); nb != nil {
						return walk(nb, name+"/"+string(k))
					}
				}
				return nil
			})
		}
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error { return walk(b, string(name)) })
	})
	if err != nil {
		report(Problem{Object: path, Err: err})
		return false
	}
	ok := true
	err = view(db, "check "+path, func(tx *bbolt.Tx) error {
		for e := range tx.Check() {
			report(Problem{Object: path + ": bbolt", Err: fmt.Errorf("%w: %v", ErrCorrupt, e)})
			ok = false
		}
		return nil
	})
	if err != nil {
		report(Problem{Object: path, Err: err})
		return false
	}
	return ok
}

func (c *Catalog) checkResources(tx *bbolt.Tx, path string, report func(Problem)) {
	recs := c.resRecords(tx)
	decoders := map[string]func() any{
		string(bktDevices): func() any { return &Device{} }, string(bktGroups): func() any { return &Group{} },
		string(bktRetention): func() any { return &KeepRule{} }, string(bktReplication): func() any { return &[]ruleRecord{} },
		string(bktSchedules): func() any { return &Schedule{} }, string(bktProfiles): func() any { return &settingsdoc.Profile{} },
		string(bktGroupProfiles): func() any { return new(string) },
		string(bktUsers):         func() any { return &User{} }, string(bktAudit): func() any { return &AuditEntry{} },
		string(bktCertifications): func() any { return &Certification{} }, string(bktCertPolicies): func() any { return &CertPolicy{} },
		string(bktNotifyPrefs): func() any { return &NotifyPrefs{} }, string(bktDigest): func() any { return &json.RawMessage{} },
		string(bktUndeliverable): func() any { return &UndeliverableRecord{} }, string(bktHistory): func() any { return &HistoryRecord{} },
		string(bktHistoryDays): func() any { return &HistoryRecord{} },
		string(bktSettings):    func() any { return &json.RawMessage{} },
	}
	for _, bkt := range resourceBuckets {
		if tx.Bucket(bkt) == nil {
			report(Problem{Object: path + ": bucket " + string(bkt), Err: fmt.Errorf("%w: missing", ErrCorrupt)})
			continue
		}
		_ = recs.each(bkt, func(_ []byte, decode func(any) error) error {
			if err := decode(decoders[string(bkt)]()); err != nil {
				reportRecord(err, report)
			}
			return nil
		})
	}
	checkFrames(tx, path, [][]byte{bktMeta}, report)
	if gs := tx.Bucket(bktGroups); gs != nil {
		_ = gs.ForEach(func(k, _ []byte) error {
			if tx.Bucket(bktMembers).Bucket(k) == nil {
				report(Problem{Object: fmt.Sprintf("%s: group %s", path, k), Err: fmt.Errorf("%w: member bucket missing", ErrCorrupt)})
			}
			return nil
		})
	}
}

// reportRecord reports err, naming the record when it is a *RecordError.
func reportRecord(err error, report func(Problem)) {
	var re *RecordError
	if errors.As(err, &re) {
		report(Problem{Object: fmt.Sprintf("%s: bucket %s, key %q", re.File, re.Bucket, re.Key), Err: fmt.Errorf("%w: %w", ErrCorrupt, re.Err)})
		return
	}
	report(Problem{Object: "record", Err: err})
}

// checkFrames verifies the frame of every record in buckets (every bucket
// of the file, nested ones included, when buckets is nil) and reports each
// damaged one by file, bucket and key. It needs no key.
func checkFrames(tx *bbolt.Tx, path string, buckets [][]byte, report func(Problem)) {
	strict := framed(tx)
	var walk func(b *bbolt.Bucket, name []byte)
	walk = func(b *bbolt.Bucket, name []byte) {
		_ = b.ForEach(func(k, v []byte) error {
			if v == nil {
				if nb := b.Bucket(k); nb != nil {
					walk(nb, k)
				}
				return nil
			}
			if frame.Legacy(v) && !strict {
				return nil
			}
			if err := frame.Verify(name, k, v); err != nil {
				report(Problem{Object: fmt.Sprintf("%s: bucket %s, key %q", path, name, k), Err: fmt.Errorf("%w: %w", ErrCorrupt, err)})
			}
			return nil
		})
	}
	if buckets == nil {
		_ = tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			walk(b, name)
			return nil
		})
		return
	}
	for _, name := range buckets {
		if b := tx.Bucket(name); b != nil {
			walk(b, name)
		}
	}
}

// checkPieces checks records against the indexes both ways, each client's
// chain against its pieces and, with readData, that each piece's content is
// present and sound.
func (s *shard) checkPieces(tx *bbolt.Tx, store *dedupe.Store, readData bool, report func(Problem)) {
	for _, name := range catalogBuckets {
		if tx.Bucket(name) == nil {
			report(Problem{Object: s.path + ": bucket " + string(name), Err: fmt.Errorf("%w: missing", ErrCorrupt)})
			return
		}
	}
	seenRef := map[dedupe.Ref]bool{}
	perClient := map[string]int{}
	want := map[string]bool{} // client-level index entries the pieces need
	_ = tx.Bucket(bktPieces).ForEach(func(k, v []byte) error {
		obj := s.path + ": piece " + s.pieceID(k)
		r, err := decodeRecord(v)
		if err != nil {
			report(Problem{Object: obj, Err: err})
			return nil
		}
		perClient[r.Client]++
		if tx.Bucket(bktIdxTime).Get(timeEntry(r, k)) == nil {
			report(Problem{Object: obj, Err: fmt.Errorf("%w: missing from index %s", ErrCorrupt, bktIdxTime)})
		}
		for _, e := range clientEntries(r) {
			id := string(e[0]) + "\x00" + string(e[1])
			if !want[id] && tx.Bucket(e[0]).Get(e[1]) == nil {
				report(Problem{Object: obj, Err: fmt.Errorf("%w: missing from index %s", ErrCorrupt, e[0])})
			}
			want[id] = true
		}
		if readData && !seenRef[r.Ref] {
			seenRef[r.Ref] = true
			if _, err := store.Get(tx, r.Ref); err != nil {
				report(Problem{Object: obj + " content " + r.Ref.String(), Err: err})
			}
		}
		return nil
	})
	s.checkChains(tx, perClient, report)
	for _, idx := range [][]byte{bktIdxGroup, bktIdxTag} {
		_ = tx.Bucket(idx).ForEach(func(k, _ []byte) error {
			if !want[string(idx)+"\x00"+string(k)] {
				report(Problem{Object: fmt.Sprintf("%s: index %s entry %q", s.path, idx, k), Err: fmt.Errorf("%w: no piece needs it", ErrCorrupt)})
			}
			return nil
		})
	}
	_ = tx.Bucket(bktIdxTime).ForEach(func(k, _ []byte) error {
		ok := false
		if len(k) == 16 {
			r, found, err := getRecord(tx, k[8:])
			ok = err == nil && found && bytes.Equal(timeEntry(r, k[8:]), k)
		}
		if !ok {
			report(Problem{Object: fmt.Sprintf("%s: index %s entry %x", s.path, bktIdxTime, k), Err: fmt.Errorf("%w: no such piece", ErrCorrupt)})
		}
		return nil
	})
}

// checkChains walks every client's chain: it must reach exactly the
// client's pieces, newest first.
func (s *shard) checkChains(tx *bbolt.Tx, perClient map[string]int, report func(Problem)) {
	_ = tx.Bucket(bktLatest).ForEach(func(k, _ []byte) error {
		client := string(k)
		n := 0
		err := walkChain(tx, client, func([]byte, record) (bool, error) { n++; return false, nil })
		obj := fmt.Sprintf("%s: pieces of client %s", s.path, client)
		switch {
		case err != nil:
			report(Problem{Object: obj, Err: err})
		case n != perClient[client]:
			report(Problem{Object: obj, Err: fmt.Errorf("%w: chain reaches %d pieces, the catalog has %d", ErrCorrupt, n, perClient[client])})
		}
		delete(perClient, client)
		return nil
	})
	for client, n := range perClient {
		report(Problem{Object: fmt.Sprintf("%s: pieces of client %s", s.path, client), Err: fmt.Errorf("%w: %d pieces but no newest-piece entry", ErrCorrupt, n)})
	}
}

func checkRestores(tx *bbolt.Tx, path string, report func(Problem)) {
	_ = (records{tx: tx, file: path}).each(bktRestores, func(_ []byte, decode func(any) error) error {
		if err := decode(&RestoreEvent{}); err != nil {
			reportRecord(err, report)
		}
		return nil
	})
	checkFrames(tx, path, [][]byte{bktMeta}, report)
	for _, idx := range [][]byte{bktIdxRestoreDevice, bktIdxRestoreJob} {
		_ = tx.Bucket(idx).ForEach(func(k, _ []byte) error {
			if len(k) < 8 || tx.Bucket(bktRestores).Get(k[len(k)-8:]) == nil {
				report(Problem{Object: fmt.Sprintf("%s: index %s entry %q", path, idx, k), Err: fmt.Errorf("%w: no such restore event", ErrCorrupt)})
			}
			return nil
		})
	}
}
