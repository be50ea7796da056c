package catalog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"go.etcd.io/bbolt"

	"github.com/fleetvault/fleetvault/catalog/frame"
	"github.com/fleetvault/fleetvault/catalog/repokey"
)

// The meta bucket every file of an installation has once its records are
// framed: "frames" marks that every record is a frame (a legacy value is
// then damage); "keycheck", in the resource database of an encrypted
// installation, is a record sealed with the repository key, so a wrong key
// is told apart from damage.
var (
	bktMeta   = []byte("fleetvault")
	keyFramed = []byte("frames")
	keyCheck  = []byte("keycheck")
)

// resourceBuckets are the resource database's buckets of JSON records.
var resourceBuckets = [][]byte{bktDevices, bktGroups, bktReplication, bktRetention, bktSchedules, bktProfiles, bktGroupProfiles, bktUsers, bktAudit,
	bktCertifications, bktCertPolicies, bktNotifyPrefs, bktDigest, bktUndeliverable, bktHistory, bktHistoryDays, bktSettings}

// checkKey compares what the MBR says with the key given.
func checkKey(m MBR, k *repokey.Key) error {
	switch {
	case m.Keys != "" && k == nil:
		return fmt.Errorf("catalog: %s: %w (its key files are in %s)", m.dir, ErrKeyRequired, m.Path(m.Keys))
	case m.Keys == "" && k != nil:
		return fmt.Errorf("catalog: %s: %w: a repository key was given but the installation is not encrypted (its MBR names no keys directory)", m.dir, ErrInvalid)
	}
	return nil
}

// markFramed records that every record of the file is a frame.
func markFramed(tx *bbolt.Tx) error {
	b, err := tx.CreateBucketIfNotExists(bktMeta)
	if err != nil {
		return err
	}
	if b.Get(keyFramed) != nil {
		return nil
	}
	return b.Put(keyFramed, frame.Codec{}.Encode(bktMeta, keyFramed, []byte("1")))
}

// framed reports whether the file's records are all frames.
func framed(tx *bbolt.Tx) bool {
	b := tx.Bucket(bktMeta)
	return b != nil && b.Get(keyFramed) != nil
}

// upgradeFrames rewrites the legacy records of buckets as frames, once.
func upgradeFrames(tx *bbolt.Tx, codec frame.Codec, buckets [][]byte) error {
	if framed(tx) {
		return nil
	}
	for _, b := range buckets {
		if _, err := reframe(tx, b, codec, codec, false); err != nil {
			return err
		}
	}
	return markFramed(tx)
}

// createLegacyJournal creates the job journal of an installation made
// before record frames, whose init did not create it (the engine did, at
// the first serve): such an installation's resource database is not yet
// marked framed. Any other missing journal stays an error.
func (c *Catalog) createLegacyJournal() error {
	path := c.mbr.Path(c.mbr.Journal)
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	legacy := false
	if err := view(c.res, "catalog: resource database", func(tx *bbolt.Tx) error { legacy = !framed(tx); return nil }); err != nil || !legacy {
		return err
	}
	db, err := OpenFile(path, "job journal", FileOptions{Create: true, LockTimeout: c.opts.LockTimeout})
	if err != nil {
		return err
	}
	c.log.Info("created the job journal of an installation made before record frames", "journal", path)
	return db.Close()
}

func (c *Catalog) initResources(tx *bbolt.Tx, create bool) error {
	for _, b := range append([][]byte{bktMembers}, resourceBuckets...) {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	if create && c.opts.Key != nil {
		meta, err := tx.CreateBucketIfNotExists(bktMeta)
		if err != nil {
			return err
		}
		if err := meta.Put(keyCheck, c.resCodec.Encode(bktMeta, keyCheck, []byte(c.opts.Key.ID()))); err != nil {
			return err
		}
	}
	return upgradeFrames(tx, c.resCodec, resourceBuckets)
}

// verifyKey checks the key against the resource database's key check.
func (c *Catalog) verifyKey(tx *bbolt.Tx) error {
	path := c.mbr.Path(c.mbr.Resources)
	var v []byte
	if b := tx.Bucket(bktMeta); b != nil {
		v = b.Get(keyCheck)
	}
	switch {
	case c.opts.Key == nil && v != nil:
		return fmt.Errorf("catalog: %s: %w, but the MBR names no keys directory", path, ErrKeyRequired)
	case c.opts.Key == nil:
		return nil
	case v == nil:
		return fmt.Errorf("catalog: %s: %w: the resource database has no key check record", path, ErrCorrupt)
	}
	_, err := c.resCodec.Decode(bktMeta, keyCheck, v)
	switch {
	case err == nil:
		return nil
	case frame.Verify(bktMeta, keyCheck, v) == nil && errors.Is(err, frame.ErrDamaged):
		return fmt.Errorf("catalog: %s: %w (key %s)", path, ErrWrongKey, c.opts.Key.ID())
	}
	return recordError(path, bktMeta, keyCheck, err)
}

// FrameAll makes every record of the file in tx a frame: legacy values
// (written before frames) in any bucket, nested ones included, are
// rewritten as clear frames, and the file is marked so a legacy value is
// damage from then on. It does nothing to a file already marked. The job
// journal calls it when it opens its file for writing.
func FrameAll(tx *bbolt.Tx) error {
	if framed(tx) {
		return nil
	}
	var walk func(b *bbolt.Bucket, name []byte) error
	walk = func(b *bbolt.Bucket, name []byte) error {
		type kv struct{ k, v []byte }
		var redo []kv
		var nested [][]byte
		err := b.ForEach(func(k, v []byte) error {
			switch {
			case v == nil && b.Bucket(k) != nil:
				nested = append(nested, append([]byte(nil), k...))
			case v != nil && frame.Legacy(v):
				redo = append(redo, kv{append([]byte(nil), k...), append([]byte(nil), v...)})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, e := range redo {
			if err := b.Put(e.k, frame.Codec{}.Encode(name, e.k, e.v)); err != nil {
				return err
			}
		}
		for _, n := range nested {
			if err := walk(b.Bucket(n), n); err != nil {
				return err
			}
		}
		return nil
	}
	err := tx.ForEach(func(name []byte, b *bbolt.Bucket) error { return walk(b, name) })
	if err != nil {
		return err
	}
	return markFramed(tx)
}
