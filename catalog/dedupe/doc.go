// Package dedupe is Fleetvault's dedupe core: a content-addressed store kept
// in a bbolt database beneath the backup catalog. Identical content is
// stored once, whatever device it came from: ten thousand devices with the
// same settings document cost one object and ten thousand references.
//
// # Basics
//
// Content is named by its Ref, the SHA-256 of the whole content. Small
// content (up to Options.ChunkThreshold, 64 KiB by default) is stored whole;
// larger content is split into content-defined chunks (FastCDC, 2-64 KiB,
// 8 KiB on average) so that a small edit in a large document reuses most of
// its chunks. Objects and chunks are compressed with zstd when that makes
// them smaller, and stored raw otherwise.
//
// Every method takes the caller's bbolt transaction, so content and the
// catalog records that refer to it commit or roll back together:
//
//	s := dedupe.New(dedupe.Options{})
//	err := db.Update(func(tx *bbolt.Tx) error {
//		if err := s.Init(tx); err != nil {
//			return err
//		}
//		ref, added, err := s.Put(tx, settings) // +1 reference
//		...
//	})
//
// Put adds a reference, Release removes one; at zero references the object
// is deleted and every chunk no other object uses with it, so expiring
// backups reclaims space. Stats reports the store's exact counters.
//
// Get checks the hash of every chunk and of the whole content: damaged
// content is an error wrapping ErrCorrupt that names the object and the
// chunk, never data. Check walks the whole store and reports each problem.
//
// With Options.Cipher (a *repokey.Key) every payload, inline object or
// chunk, is sealed after compression (XChaCha20-Poly1305, the record's kind
// and hash as associated data); refs stay the SHA-256 of the plaintext, so
// lookups and dedupe are unchanged and the hash devices verify is the same.
// Reseal re-encrypts a whole store (encrypting one in clear, rotating a key).
//
// The storage format (bucket names, key and value layouts, hashing,
// compression, sealing) is normative and specified in docs/spec/dedupe.md.
//
// # Caveats
//
// Batch: bbolt fsyncs every commit, so put many objects per transaction.
// Compression and chunking run inside the write transaction, which holds
// bbolt's single writer lock; new content is the slow path, repeated content
// costs a hash and two small bbolt writes.
//
// Put trusts an existing object: it does not re-read it. Run Check with
// readData to find damage; putting the same content again heals an object
// whose record was lost.
//
// The subpackage fleethistory generates synthetic fleet settings histories
// for the benchmarks.
package dedupe
