package catalog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"runtime/debug"
	"time"

	"go.etcd.io/bbolt"
)

// bbolt's on-disk meta page: a 16-byte page header, then magic, version,
// page size, flags, root bucket (root, sequence), freelist, high-water page id,
// txid and an FNV-64a checksum of the preceding 56 bytes.
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	pageHeaderSize = 16
	metaSumOffset  = 56
	minPageSize    = 512
	maxPageSize    = 1 << 16
)

type boltMeta struct {
	pageSize uint32
	root     uint64 // root bucket's page
	freelist uint64 // freelist page, or noFreelist
	pgid     uint64 // high-water mark: pages in use
	txid     uint64
}

// parseBoltMeta decodes and validates one meta page's meta section.
func parseBoltMeta(b []byte) (boltMeta, error) {
	if len(b) < metaSumOffset+8 {
		return boltMeta{}, errors.New("meta page is short")
	}
	le := binary.LittleEndian
	if le.Uint32(b[0:]) != boltMagic {
		return boltMeta{}, errors.New("meta page has no bbolt magic number")
	}
	if v := le.Uint32(b[4:]); v != boltVersion {
		return boltMeta{}, fmt.Errorf("meta page has bbolt version %d, want %d", v, boltVersion)
	}
	h := fnv.New64a()
	h.Write(b[:metaSumOffset])
	if h.Sum64() != le.Uint64(b[metaSumOffset:]) {
		return boltMeta{}, errors.New("meta page checksum mismatch")
	}
	m := boltMeta{pageSize: le.Uint32(b[8:]), root: le.Uint64(b[16:]), freelist: le.Uint64(b[32:]), pgid: le.Uint64(b[40:]), txid: le.Uint64(b[48:])}
	if m.pageSize < minPageSize || m.pageSize > maxPageSize || m.pageSize&(m.pageSize-1) != 0 {
		return boltMeta{}, fmt.Errorf("meta page has bad page size %d", m.pageSize)
	}
	return m, nil
}

// checkBoltFile inspects a bbolt file before bbolt maps it: both meta pages
// are read and validated, and the file must be at least as long as the pages
// the newest valid meta says are in use (a truncated file would fault when
// read through the memory map).
func checkBoltFile(path string) error {
	_, err := readBoltMeta(path)
	return err
}

// readBoltMeta validates the meta pages and length and returns the newest
// valid meta.
func readBoltMeta(path string) (boltMeta, error) {
	f, err := os.Open(path)
	if err != nil {
		return boltMeta{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return boltMeta{}, err
	}
	size := st.Size()
	head := make([]byte, pageHeaderSize+metaSumOffset+8)
	if _, err := io.ReadFull(f, head); err != nil {
		return boltMeta{}, fmt.Errorf("%w: file is %d bytes, too short for a bbolt database", ErrCorrupt, size)
	}
	m0, err0 := parseBoltMeta(head[pageHeaderSize:])
	pageSize := int64(os.Getpagesize())
	if err0 == nil {
		pageSize = int64(m0.pageSize)
	}
	var m1 boltMeta
	err1 := errors.New("file too short for the second meta page")
	if size >= pageSize+int64(len(head)) {
		if _, err := f.ReadAt(head, pageSize); err == nil {
			m1, err1 = parseBoltMeta(head[pageHeaderSize:])
		}
	}
	best := m0
	switch {
	case err0 != nil && err1 != nil:
		return boltMeta{}, fmt.Errorf("%w: both meta pages damaged: page 0: %v; page 1: %v", ErrCorrupt, err0, err1)
	case err0 != nil:
		best = m1
	case err1 == nil && m1.txid > m0.txid:
		best = m1
	}
	if want := int64(best.pgid) * int64(best.pageSize); size < want {
		return boltMeta{}, fmt.Errorf("%w: file is %d bytes but its meta page says %d pages of %d bytes (%d bytes): truncated",
			ErrCorrupt, size, best.pgid, best.pageSize, want)
	}
	return best, nil
}

// guard runs fn with memory faults turned into panics and panics turned into
// an error wrapping ErrCorrupt: bbolt reads pages through a memory map and
// panics or faults on damaged pages.
func guard(what string, fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: %w: bbolt failed reading a damaged page: %v", what, ErrCorrupt, r)
		}
	}()
	return fn()
}

// fileGrowth is how much a file grows at a time once past it. bbolt's
// default (16 MiB, and powers of two below that) would make a 9 MiB catalog
// a 16 MiB file; growing 256 KiB at a time costs one truncate and fsync per
// 256 KiB the file grows (about a thousand for a 1,000,000-piece catalog,
// against its thousands of commits).
const fileGrowth = 256 << 10

// FileOptions configure OpenFile.
type FileOptions struct {
	ReadOnly    bool          // shared lock, no writes
	Create      bool          // create the file when missing (Init only)
	LockTimeout time.Duration // how long to wait for another process's lock; 0 means 5s
}

// OpenFile checks a bbolt file of the installation (its meta pages and
// length, before bbolt maps it) and opens it. what names the file in
// errors ("resource database", "job journal"). A missing file is a
// *MissingError unless opts.Create; a damaged one an error wrapping
// ErrCorrupt. Every store of an installation opens its file with it.
func OpenFile(path, what string, opts FileOptions) (*bbolt.DB, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 5 * time.Second
	}
	_, err := os.Stat(path)
	switch {
	case err == nil:
		if err := checkBoltFile(path); err != nil {
			return nil, fmt.Errorf("catalog: open the %s %s: %w (run fleetvault check for details; restore the file from a copy)", what, path, err)
		}
	case errors.Is(err, fs.ErrNotExist) && !opts.Create:
		return nil, fmt.Errorf("catalog: %w", &MissingError{Path: path, What: what})
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("catalog: open the %s %s: %w", what, path, err)
	}
	var db *bbolt.DB
	err = guard("catalog: open the "+what+" "+path, func() error {
		var err error
		db, err = bbolt.Open(path, 0o600, &bbolt.Options{
			Timeout: opts.LockTimeout, ReadOnly: opts.ReadOnly, FreelistType: bbolt.FreelistMapType,
		})
		return err
	})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("catalog: open the %s %s: %w (still locked after %s)", what, path, ErrLocked, opts.LockTimeout)
	}
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return nil, err
		}
		return nil, fmt.Errorf("catalog: open the %s %s: %w", what, path, err)
	}
	db.AllocSize = fileGrowth
	return db, nil
}

func openBolt(path, what string, readOnly, create bool, lockTimeout time.Duration) (*bbolt.DB, error) {
	return OpenFile(path, what, FileOptions{ReadOnly: readOnly, Create: create, LockTimeout: lockTimeout})
}

// view and update run bbolt transactions under guard.
func view(db *bbolt.DB, what string, fn func(*bbolt.Tx) error) error {
	return guard(what, func() error { return db.View(fn) })
}

func update(db *bbolt.DB, what string, fn func(*bbolt.Tx) error) error {
	return guard(what, func() error { return db.Update(fn) })
}

func batch(db *bbolt.DB, what string, fn func(*bbolt.Tx) error) error {
	return guard(what, func() error { return db.Batch(fn) })
}
