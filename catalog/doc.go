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
// Queries use secondary index buckets: by client and time (Latest), by backup
// group and client (Candidates), by tag key=value within a backup group, and by
// time. Each is a cursor seek, independent of the catalog's size.
//
// The resource database holds devices (clients, with domain, category, owner,
// catalog name, identifier and broker credentials), groups (device groups and
// backup groups, one bbolt key per member so a 100,000-member group changes
// one key at a time), keep rules and the replication map used in DR mode.
//
// The schema is an open standard: docs/spec/catalog.md and
// docs/spec/catalog.sql. Export writes a catalog and its resource database as
// portable SQL (loads into sqlite3 and PostgreSQL) or JSON; Import reads
// either back.
//
// # Caveats
//
// bbolt allows one writer process per file: while one process has an
// installation open for writing, another Open waits Options.LockTimeout and
// then fails; read-only opens share the file with each other only.
//
// Times are stored in UTC with nanosecond precision; the location of a
// time.Time given to Ingest is not kept.
//
// A damaged bbolt file can make bbolt panic or fault. Open and Check guard
// against it (file and meta page checks before opening, recovered page walks
// with faults turned into errors), so a damaged file is reported as a Problem
// or an error wrapping ErrCorrupt, never a crash; but a file damaged while open
// may still fail any operation with ErrCorrupt.
package catalog
