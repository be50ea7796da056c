// Package grouprestore is the job engine: group backup, group restore and undo,
// with rollout control and a crash-safe journal.
//
// # Group restore
//
// "Restore from Backup Group for Reference IoT from model House to Backup Group
// of Devices": for every member of the target device group the engine
//
//  1. probes the device (READ:SETTINGS?TAG+SETTINGS: its tag and current settings),
//     takes the answer only from the device addressed (its dev is the device
//     id, ErrWrongDevice otherwise) and writes only to a device that announces
//     the write-settings and idempotent-job capabilities (Unsupported otherwise),
//  2. matches the tag against the backup group's pieces with package tagmatch
//     (no match or an ambiguous match means nothing is written),
//  3. stores the device's current settings in the catalog as its undo snapshot,
//  4. journals its intent (which piece, which hash) before sending anything,
//  5. writes the matching settings (WRITE:SETTINGS?TAG+SETTINGS) with the job id,
//  6. compares the hash the device answers with the catalog's hash, and
//  7. journals the device's final outcome.
//
// Before matching (and before a backup stores anything) the device's live tag
// is checked against the tag it is registered with (Target.Tag) on the
// identity keys, by default manufacturer, product and model: a device that
// contradicts its registration ends TagMismatch with nothing stored or
// written, a warning is logged and Stats counts it (docs/spec/tagmatch.md,
// "Tag trust").
//
// Every device ends in exactly one State. Nothing is reported restored that was
// not verified, and no device receives two different settings from one job: a
// resumed job rewrites the settings it journaled as its intent.
//
// # Undo
//
// An undo writes each device's snapshot back, to every device the restore
// may have changed: those restored, and those whose write was sent but not
// verified (a wrong acknowledgement, a timeout, a stop mid-write). Devices that
// refused the write (Rejected) changed nothing and are left alone.
//
// # Rollout
//
// Rollout bounds concurrency and rate, runs a canary first and then waves,
// aborts when the failure or no-match share passes a threshold, retries
// retryable failures with backoff, and parks offline devices until they come
// online or their time-to-live passes.
//
// # Durability
//
// The journal (its own bbolt file) holds each job, its plan and each device's
// outcome. Writes are group-committed: many devices share one fsync. After a
// crash, Engine.Resume picks up every job that was running; a resumed job
// asks the catalog for the piece it may already have stored for a device
// (Catalog.JobPiece) before storing one, so no device gets two pieces from
// one job.
//
// A write that fails because the disk is full or failing (IsStorageError)
// pauses the job with a job-level error (Progress.Error) instead of failing
// devices; the job retries with a capped doubling delay (Options.StorageRetry)
// and goes on by itself when writes succeed again.
//
// Every journal record is a record frame (package catalog/frame): a
// checksum over its bucket, key and bytes that every read verifies, and
// fleetvault check too. The journal holds hashes and piece ids, never
// settings bytes, so its frames are clear. The journal's file is opened
// with catalog.OpenFile: a missing one (catalog.Init creates it) is a
// *catalog.MissingError unless Options.CreateJournal, a damaged one an
// error wrapping catalog.ErrCorrupt.
package grouprestore
