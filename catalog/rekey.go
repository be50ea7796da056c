package catalog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/fleetvault/fleetvault/catalog/dedupe"
	"github.com/fleetvault/fleetvault/catalog/frame"
	"github.com/fleetvault/fleetvault/catalog/repokey"
)

// Rekey re-encrypts the stopped installation at mbrPath from the key from
// (nil: it is in clear) to the key to (nil: decrypt it): every content
// payload and every resource record is opened with from and sealed with
// to; then every file is compacted into a fresh file that replaces it, so
// no page freed by the rewrite (old plaintext or old ciphertext) stays in
// the installation; last the MBR is rewritten to name keyDir (to's key
// files) or, for to == nil, no keys directory. It is how an installation
// in clear is encrypted (fleetvault key init) and how the repository key is
// rotated (fleetvault key rotate). Content hashes, piece ids and records
// do not change. It needs the installation to itself (no server running)
// and, while it runs, as much free space as the largest file; a crash
// part-way leaves files sealed under both keys: keep a copy of the
// installation until it has finished.
func Rekey(mbrPath string, from, to *repokey.Key, keyDir string) error {
	m, err := ReadMBR(mbrPath)
	if err != nil {
		return err
	}
	c, err := Open(mbrPath, Options{Key: from})
	if err != nil {
		return err
	}
	err = c.reseal(to)
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("catalog: rekey %s: %w", mbrPath, err)
	}
	files := []string{m.Path(m.Resources), m.Path(m.Journal)}
	for _, n := range m.CatalogNames() {
		p := m.Catalog
		if n != "" {
			p = m.Catalogs[n]
		}
		files = append(files, m.Path(p))
	}
	for _, f := range files {
		if err := compactFile(f); err != nil {
			return fmt.Errorf("catalog: rekey %s: %w", mbrPath, err)
		}
	}
	m.Keys = ""
	if to != nil {
		m.Keys = keyDir
		if rel, err := filepath.Rel(m.dir, keyDir); err == nil && !strings.HasPrefix(rel, "..") {
			m.Keys = rel
		}
	}
	return WriteMBR(mbrPath, m)
}

// reseal rewrites every secret record under to.
func (c *Catalog) reseal(to *repokey.Key) error {
	var toCipher frame.Cipher
	dopts := c.opts.Dedupe
	dopts.Cipher = nil
	if to != nil {
		toCipher, dopts.Cipher = to, to
	}
	toCodec, toStore := frame.New(toCipher), dedupe.New(dopts)
	err := update(c.res, "catalog: reseal resource database", func(tx *bbolt.Tx) error {
		for _, b := range resourceBuckets {
			if _, err := reframe(tx, b, c.resCodec, toCodec, true); err != nil {
				return err
			}
		}
		meta, err := tx.CreateBucketIfNotExists(bktMeta)
		if err != nil {
			return err
		}
		if to == nil {
			return meta.Delete(keyCheck)
		}
		return meta.Put(keyCheck, toCodec.Encode(bktMeta, keyCheck, []byte(to.ID())))
	})
	if err != nil {
		return err
	}
	for _, s := range c.shards {
		err := update(s.db, "catalog: reseal "+s.label(), func(tx *bbolt.Tx) error {
			_, err := c.store.Reseal(tx, toStore)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// compactFile copies the live data of the bbolt file at path into a fresh
// file and renames it over the original: freed pages are not copied.
func compactFile(path string) error {
	src, err := OpenFile(path, "file", FileOptions{ReadOnly: true, LockTimeout: time.Second})
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := path + ".compact"
	_ = os.Remove(tmp)
	dst, err := bbolt.Open(tmp, 0o600, &bbolt.Options{Timeout: time.Second, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return fmt.Errorf("compact %s: %w", path, err)
	}
	err = guard("compact "+path, func() error { return bbolt.Compact(dst, src, 64<<20) })
	err = errors.Join(err, dst.Close())
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("compact %s: %w", path, err)
	}
	return nil
}
