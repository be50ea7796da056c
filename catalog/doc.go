// Package catalog is Fleetvault's open-standard backup catalog, resource
// database and master backup record, stored in bbolt files.
//
// # Basics
//
// An installation is a directory holding a master backup record (MBR), a small
// YAML file that says where everything else is: the resource database, the
// default catalog and any other catalogs, the job journal and the method
// repository, together with this site's server address and the DR site's.
// Paths in the MBR are relative to the MBR's directory, so a copied or
// replicated installation works where it lands. Init creates one; Open opens
// one from its MBR:
//
//	mbrPath, err := catalog.Init("/var/lib/fleetvault", catalog.InitOptions{Server: "10.10.11.1"})
//	c, err := catalog.Open(mbrPath, catalog.Options{Logger: log})
//	defer c.Close()
//
// A catalog records data pieces: one settings document of one client (device)
// at one time, with the article's fields (client, piece, type, owner, backup
// location, backup time, expiry, size), the device's tag at backup time, the
// content reference (SHA-256) and free optional fields. The content itself is
// kept, deduplicated, in the same bbolt file (package catalog/dedupe), so a
// record and its content commit in one transaction. Ingest takes a batch of
// pieces and commits them with one fsync; concurrent Ingest calls are
// group-committed (bbolt's DB.Batch). Nothing Ingest returns is lost by a
// crash after it returned.
//
// A client's pieces are stored as runs: a backup whose fields and content
// equal the client's newest piece's (an unchanged nightly backup) extends
// that piece's run instead of adding a record. Each piece of a run keeps an
// id of its own (the run's key plus its index), listed, restored, exported
// as its own row and pruned one by one: pruning a middle piece splits the
// run, and every other piece keeps its id. Each client's runs form a chain,
// newest first (idx/latest holds the newest piece, and the newest run's
// latest pieces, so an unchanged backup rewrites no record; each record the
// key of the client's next older run); backup groups and the tags of each
// client's pieces are indexed per client (idx/group), tags referring to a
// dictionary of the catalog's distinct tags. Latest is one lookup;
// Candidates (the newest piece per client of a backup group) and Pieces by
// group or tag merge the chains of the clients found in idx/group, newest
// first. A batch of backups of many clients grows or appends runs and
// touches one small entry per client, so ingest stays fast as the catalog
// grows, and a fleet's unchanged nightly backups cost about 26 bytes each
// on disk, content and indexes included; see docs/BENCHMARKS.md. The
// layout is in docs/spec/catalog.md, "bbolt layout"; catalogs written
// before runs (one record per piece) are read as they are, and migrated
// (their per-piece time index dropped, their tag index folded into
// idx/group) when opened for writing.
//
// The resource database holds devices (clients, with domain, category, owner,
// catalog name, identifier and broker credentials), groups (device groups and
// backup groups, one bbolt key per member so a 100,000-member group changes
// one key at a time), keep rules (restic 0.14's forget semantics in UTC;
// see Keepers), backup schedules with their next run (the store of
// package schedule), the replication map used in DR mode, and the
// certification of backups: a record per backup whose state is not the
// default unknown (Certification, with the last test restore's evidence)
// and a policy per device category (CertPolicy: critical or non-critical).
// Prune never removes a client's newest certified piece.
// It also holds the installation's users (CreateUser, with a role and an
// argon2id password hash), the data owner of devices and groups (AssignOwner:
// all or nothing, in one transaction) and the audit log (AppendAudit returns
// once the entry is committed, so an acknowledged change survives a crash).
// Who may do what is not decided here but in package service.
//
// The schema is an open standard: docs/spec/catalog.md and
// docs/spec/catalog.sql. Export writes a catalog and its resource database as
// portable SQL (loads into sqlite3 and PostgreSQL) or JSON; Import reads
// either back.
//
// # Records and keys
//
// Every record other than a piece record or a dedupe record is stored as a
// frame (package catalog/frame): a CRC-32C over its bucket, key and bytes,
// verified on every read and by Check, and, in the resource database of an
// encrypted installation, the whole record sealed with the repository key.
// Code that adds a kind of record (users, audit entries, device keys) gets
// both by reading and writing through records.put/get/each on the
// resource database (Catalog.resRecords), and nothing else to do.
//
// An installation is encrypted when its MBR names a keys directory
// (package catalog/repokey): Init with InitOptions.Key and KeyDir makes
// one; Open then needs Options.Key (ErrKeyRequired without it, ErrWrongKey
// with another installation's) and seals content and resource records with
// it. Rekey encrypts an installation in clear or rotates its key.
//
// Open opens only files that exist: a file the MBR names that is missing
// is a *MissingError (errors.Is ErrMissing) naming it, since only Init
// creates them; OpenFile is the same checked open for the job journal.
//
// # Caveats
//
// bbolt allows one writer process per file: while one process has an
// installation open for writing, another Open waits Options.LockTimeout and
// then fails; read-only opens share the file with each other only.
//
// Ingest goes through bbolt's DB.Batch, which waits up to DB.MaxBatchDelay
// (10 ms; Options.BatchDelay changes it) for other callers to share the
// commit: call it with many pieces at once rather than one at a time. With several catalogs in the MBR, Ingest
// commits each catalog's share separately.
//
// Import reads the whole export into memory before writing it (Export
// streams). Restores without a device or job filter come newest recorded
// first.
//
// Times are stored in UTC with nanosecond precision; the location of a
// time.Time given to Ingest is not kept.
//
// A damaged bbolt file can make bbolt panic or fault. Verify reads every
// reachable page from the file and checks its offsets before bbolt maps it,
// so a damaged file is reported as Problems, never a crash (tested with
// thousands of random byte flips). Open checks only the meta pages and the
// length (a full walk would cost seconds on a large catalog), and every
// transaction runs with panics and memory faults in its goroutine turned into
// errors wrapping ErrCorrupt; a damaged page reached from a goroutine of
// bbolt's own (a DB.Batch timer) can still crash: run Verify (fleetvault
// check) after a suspected corruption.
package catalog
