package catalog

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"

	"github.com/fleetvault/fleetvault/catalog/dedupe"
	"github.com/fleetvault/fleetvault/catalog/frame"
	"github.com/fleetvault/fleetvault/catalog/repokey"
)

// Options configure Open.
type Options struct {
	Logger      *slog.Logger     // nil: discard
	SiteAddress string           // this host's server address; equal to the MBR's dr_server means DR mode
	ReadOnly    bool             // open the files read-only (shared lock); writes fail with ErrReadOnly
	LockTimeout time.Duration    // how long to wait for another process's lock; 0 means 5s
	Dedupe      dedupe.Options   // content store options
	Now         func() time.Time // clock for retention; nil means time.Now
	// BatchDelay is how long a batched write (Ingest, RecordRestores,
	// PutDevices) waits for concurrent callers to share its commit: 0 means
	// bbolt's default (10 ms); negative means none, for callers that already
	// group their writes (the group-restore engine does).
	BatchDelay time.Duration
	// Key is the repository key of an encrypted installation (the MBR names
	// a keys directory): open it with repokey.Open. Opening an encrypted
	// installation without it fails with ErrKeyRequired; with another
	// installation's key, with ErrWrongKey.
	Key *repokey.Key
}

// Catalog is an open installation: its resource database and catalogs.
// It is safe for concurrent use.
type Catalog struct {
	mbr    MBR
	opts   Options
	log    *slog.Logger
	res    *bbolt.DB
	shards []*shard // shards[0] is the default catalog
	byName map[string]*shard
	store  *dedupe.Store
	// resCodec frames the resource database's records: sealed with the
	// repository key in an encrypted installation.
	resCodec frame.Codec
}

// shard is one catalog file.
type shard struct {
	name string // "" for the default catalog
	path string
	db   *bbolt.DB
}

// what names the file without its path: "default catalog", "catalog emea".
func (s *shard) what() string {
	if s.name == "" {
		return "default catalog"
	}
	return "catalog " + s.name
}

func (s *shard) label() string {
	if s.name == "" {
		return "default catalog " + s.path
	}
	return "catalog " + s.name + " " + s.path
}

// Open opens the installation whose master backup record is at mbrPath.
func Open(mbrPath string, opts Options) (*Catalog, error) {
	m, err := ReadMBR(mbrPath)
	if err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := checkKey(m, opts.Key); err != nil {
		return nil, err
	}
	c := newCatalog(m, opts)
	if err := c.openFiles(false); err != nil {
		c.Close()
		return nil, err
	}
	if a := opts.SiteAddress; a != "" && a != m.Server && a != m.DRServer {
		c.log.Warn("site address is neither the MBR's server nor its dr_server: running as the local site",
			"site_address", a, "server", m.Server, "dr_server", m.DRServer, "mbr", mbrPath)
	}
	c.log.Debug("catalog opened", "mbr", mbrPath, "catalogs", len(c.shards), "dr_mode", c.DRMode())
	return c, nil
}

func (c *Catalog) setBatchDelay(db *bbolt.DB) {
	switch d := c.opts.BatchDelay; {
	case d < 0:
		db.MaxBatchDelay = 0
	case d > 0:
		db.MaxBatchDelay = d
	}
}

// newCatalog returns an unopened Catalog of m.
func newCatalog(m MBR, opts Options) *Catalog {
	dopts := opts.Dedupe
	var cipher frame.Cipher
	if opts.Key != nil {
		dopts.Cipher, cipher = opts.Key, opts.Key
	}
	return &Catalog{mbr: m, opts: opts, log: opts.Logger, byName: map[string]*shard{}, store: dedupe.New(dopts), resCodec: frame.New(cipher)}
}

// openFiles opens the files the MBR names; create (Init only) creates
// missing ones, else a missing file is a *MissingError.
func (c *Catalog) openFiles(create bool) error {
	var err error
	resPath := c.mbr.Path(c.mbr.Resources)
	if c.res, err = openBolt(resPath, "resource database", c.opts.ReadOnly, create, c.opts.LockTimeout); err != nil {
		return err
	}
	c.setBatchDelay(c.res)
	if !c.opts.ReadOnly {
		if err := c.createLegacyJournal(); err != nil {
			return err
		}
		if err := update(c.res, "catalog: init resource database "+resPath, func(tx *bbolt.Tx) error { return c.initResources(tx, create) }); err != nil {
			return err
		}
	}
	if err := view(c.res, "catalog: key check "+resPath, func(tx *bbolt.Tx) error { return c.verifyKey(tx) }); err != nil {
		return err
	}
	for _, name := range c.mbr.CatalogNames() {
		p := c.mbr.Catalog
		if name != "" {
			p = c.mbr.Catalogs[name]
		}
		s := &shard{name: name, path: c.mbr.Path(p)}
		if create {
			if err := os.MkdirAll(filepath.Dir(s.path), 0o755); err != nil {
				return fmt.Errorf("catalog: open %s: %w", s.path, err)
			}
		}
		if s.db, err = openBolt(s.path, s.what(), c.opts.ReadOnly, create, c.opts.LockTimeout); err != nil {
			return err
		}
		c.setBatchDelay(s.db)
		c.shards = append(c.shards, s)
		c.byName[name] = s
		if !c.opts.ReadOnly {
			if err := update(s.db, "catalog: init "+s.label(), func(tx *bbolt.Tx) error { return initCatalog(tx, c.store) }); err != nil {
				return err
			}
		}
	}
	return nil
}

// createStores creates the empty bbolt files of a new installation: the
// resource database, the catalogs and the journal.
func createStores(m MBR, key *repokey.Key) error {
	c := newCatalog(m, Options{LockTimeout: time.Second, Logger: slog.New(slog.DiscardHandler), Key: key})
	err := c.openFiles(true)
	err = errors.Join(err, c.Close())
	if err != nil {
		return err
	}
	j, err := OpenFile(m.Path(m.Journal), "job journal", FileOptions{Create: true, LockTimeout: time.Second})
	if err != nil {
		return err
	}
	err = update(j, "catalog: init job journal", func(tx *bbolt.Tx) error { return markFramed(tx) })
	return errors.Join(err, j.Close())
}

// Close closes every file. It is safe to call more than once.
func (c *Catalog) Close() error {
	var errs []error
	if c.res != nil {
		errs = append(errs, c.res.Close())
		c.res = nil
	}
	for _, s := range c.shards {
		if s.db != nil {
			errs = append(errs, s.db.Close())
			s.db = nil
		}
	}
	return errors.Join(errs...)
}

// MBR returns the master backup record the installation was opened from.
func (c *Catalog) MBR() MBR { return c.mbr }

// DRMode reports whether this host is the DR site's server: its configured
// site address equals the MBR's dr_server. In DR mode identifiers are
// rewritten with the replication rules (Replication).
func (c *Catalog) DRMode() bool {
	return c.opts.SiteAddress != "" && c.opts.SiteAddress == c.mbr.DRServer
}

func (c *Catalog) writable() error {
	if c.opts.ReadOnly {
		return fmt.Errorf("catalog: %w", ErrReadOnly)
	}
	return nil
}
