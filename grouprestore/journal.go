package grouprestore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/fxamacker/cbor/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/catalog/frame"
	"github.com/fleetvault/fleetvault/settingsdoc"
)

// Kind is what a job does.
type Kind string

const (
	KindRestore Kind = "restore"
	KindBackup  Kind = "backup"
	KindUndo    Kind = "undo"
)

// JobState is where a job stands.
type JobState string

const (
	JobRunning   JobState = "running"
	JobPaused    JobState = "paused"
	JobDone      JobState = "done"      // every device has a final outcome
	JobCancelled JobState = "cancelled" // stopped by a person; unstarted devices skipped
	JobAborted   JobState = "aborted"   // stopped by a threshold; unstarted devices skipped
	JobFailed    JobState = "failed"    // the engine could not go on (see Reason)
)

// Final reports whether the job has ended.
func (s JobState) Final() bool { return s != JobRunning && s != JobPaused }

// Spec says what a job does. It is journaled before any device is contacted.
type Spec struct {
	Kind    Kind    `cbor:"kind" json:"kind"`
	Source  string  `cbor:"src" json:"source"`                        // restore: backup group; backup: device group; undo: the job undone
	Target  string  `cbor:"dst" json:"target"`                        // restore: device group; backup: backup group
	Policy  string  `cbor:"policy,omitempty" json:"policy,omitempty"` // tagmatch policy (restore)
	Rollout Rollout `cbor:"rollout" json:"rollout"`
	// Identity lists the tag keys a device's live tag must keep from its
	// registered tag (tag trust); empty: the engine's Options.IdentityKeys.
	// Start fills it in, so the journal holds the keys the job used.
	Identity []string `cbor:"identity,omitempty" json:"identity,omitempty"`

	// Profile, when set, says which parts of each device's settings a
	// restore writes (see package settingsdoc); frozen here so a resumed job
	// applies the same one.
	Profile *settingsdoc.Profile `cbor:"profile,omitempty" json:"profile,omitempty"`
	// AsOf (Unix ms), when set, restores each client's piece that was
	// current then instead of its newest.
	AsOf int64 `cbor:"asof,omitempty" json:"as_of_unix_ms,omitempty"`
	// Piece and Device make a replacement restore: that one piece written to
	// that one device (Target unused); a tag mismatch is refused unless
	// AllowTagMismatch.
	Piece            string `cbor:"piece,omitempty" json:"piece,omitempty"`
	Device           string `cbor:"device,omitempty" json:"device,omitempty"`
	AllowTagMismatch bool   `cbor:"mismatch,omitempty" json:"allow_tag_mismatch,omitempty"`
	// Devices, when set, limits a restore to these members of Target (a
	// drift's remediation).
	Devices []string `cbor:"devs,omitempty" json:"devices,omitempty"`
	// Continuous keeps a restore standing on Target until it is cancelled:
	// members added later, and devices coming online later, are restored
	// when they appear; membership is read again every Rescan.
	Continuous bool          `cbor:"cont,omitempty" json:"continuous,omitempty"`
	Rescan     time.Duration `cbor:"rescan,omitempty" json:"rescan_ns,omitempty"`

	// Schedule names the backup schedule that started the job; empty for a
	// job a person started. The engine does not read it: it travels with
	// the job to whoever reports the job's end (notifications).
	Schedule string `cbor:"sched,omitempty" json:"schedule,omitempty"`
}

// JobRecord is a job's journal entry.
type JobRecord struct {
	ID      string   `cbor:"id" json:"id"`
	Spec    Spec     `cbor:"spec" json:"spec"`
	State   JobState `cbor:"state" json:"state"`
	Reason  string   `cbor:"reason,omitempty" json:"reason,omitempty"`
	Created int64    `cbor:"created" json:"created_unix_ms"`
	Updated int64    `cbor:"updated" json:"updated_unix_ms"`
	Total   int      `cbor:"total" json:"total"`
	// Candidates freezes the matchable pieces at plan time, so a resumed
	// job matches against the same set.
	Candidates []Piece `cbor:"cands,omitempty" json:"-"`
}

var bucketJobs = []byte("jobs")

func membersBucket(job string) []byte { return []byte("job/" + job) }

func seqKey(seq int) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(seq))
	return k[:]
}

// journal is the engine's crash-safe record of jobs and device outcomes.
type journal struct {
	db    *bolt.DB
	batch *batcher[journalWrite, struct{}]
}

type journalWrite struct {
	job string
	seq int
	o   DeviceOutcome
}

// openJournal opens the journal file at path with the installation's
// checked open: a missing file is a *catalog.MissingError unless create, a
// damaged one wraps catalog.ErrCorrupt. Records written before frames are
// framed on open.
func openJournal(path string, create bool) (*journal, error) {
	db, err := catalog.OpenFile(path, "job journal", catalog.FileOptions{Create: create, LockTimeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("grouprestore: %w", err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketJobs); err != nil {
			return err
		}
		return catalog.FrameAll(tx)
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("grouprestore: journal %s: %w", path, err)
	}
	j := &journal{db: db}
	j.batch = newBatcher(4096, j.flush)
	return j, nil
}

func (j *journal) Close() error {
	j.batch.Close()
	return j.db.Close()
}

// create journals a new job and its plan in one transaction.
func (j *journal) create(rec JobRecord, plan []DeviceOutcome) error {
	return j.db.Update(func(tx *bolt.Tx) error {
		if err := putJob(tx, rec); err != nil {
			return err
		}
		b, err := tx.CreateBucket(membersBucket(rec.ID))
		if err != nil {
			return fmt.Errorf("grouprestore: journal job %s: %w", rec.ID, err)
		}
		for i, o := range plan {
			if err := putRecord(b, membersBucket(rec.ID), seqKey(i), o); err != nil {
				return err
			}
		}
		return nil
	})
}

func putJob(tx *bolt.Tx, rec JobRecord) error {
	return putRecord(tx.Bucket(bucketJobs), bucketJobs, []byte(rec.ID), rec)
}

// putRecord stores v, CBOR-encoded, as a record frame (package frame: the
// checksum every record of every store carries). The journal holds no
// settings bytes (hashes and piece ids only), so its frames are clear.
func putRecord(b *bolt.Bucket, bucket, key []byte, v any) error {
	body, err := cbor.Marshal(v)
	if err != nil {
		return fmt.Errorf("grouprestore: encode journal record %s/%x: %w", bucket, key, err)
	}
	return b.Put(key, frame.Codec{}.Encode(bucket, key, body))
}

// getRecord decodes a record that putRecord stored.
func getRecord(bucket, key, val []byte, v any) error {
	body, err := frame.Codec{}.Decode(bucket, key, val)
	if err == nil {
		err = cbor.Unmarshal(body, v)
	}
	return err
}

// putJob updates a job's record.
func (j *journal) putJob(rec JobRecord) error {
	return j.db.Update(func(tx *bolt.Tx) error { return putJob(tx, rec) })
}

// record durably stores one device's outcome, sharing the commit with others.
func (j *journal) record(ctx context.Context, job string, seq int, o DeviceOutcome) error {
	_, err := j.batch.Do(ctx, journalWrite{job: job, seq: seq, o: o})
	return err
}

func (j *journal) flush(ws []journalWrite) ([]struct{}, error) {
	return make([]struct{}, len(ws)), j.db.Update(func(tx *bolt.Tx) error {
		for _, w := range ws {
			b := tx.Bucket(membersBucket(w.job))
			if b == nil {
				return fmt.Errorf("grouprestore: journal has no job %s", w.job)
			}
			if err := putRecord(b, membersBucket(w.job), seqKey(w.seq), w.o); err != nil {
				return err
			}
		}
		return nil
	})
}

// errNoJob is wrapped when a job id is not in the journal.
var errNoJob = errors.New("no such job")

// load returns a job and its devices in plan order.
func (j *journal) load(id string) (JobRecord, []DeviceOutcome, error) {
	var rec JobRecord
	var devs []DeviceOutcome
	err := j.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketJobs).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("grouprestore: job %s: %w", id, errNoJob)
		}
		if err := getRecord(bucketJobs, []byte(id), v, &rec); err != nil {
			return fmt.Errorf("grouprestore: journal entry of job %s is corrupt: %w", id, err)
		}
		b := tx.Bucket(membersBucket(id))
		if b == nil {
			return fmt.Errorf("grouprestore: journal of job %s has no plan", id)
		}
		devs = make([]DeviceOutcome, 0, rec.Total)
		return b.ForEach(func(k, v []byte) error {
			var o DeviceOutcome
			if err := getRecord(membersBucket(id), k, v, &o); err != nil {
				return fmt.Errorf("grouprestore: journal of job %s, device #%d is corrupt: %w", id, binary.BigEndian.Uint64(k), err)
			}
			devs = append(devs, o)
			return nil
		})
	})
	return rec, devs, err
}

// jobs lists every job record, newest first.
func (j *journal) jobs() ([]JobRecord, error) {
	var out []JobRecord
	err := j.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketJobs).ForEach(func(k, v []byte) error {
			var rec JobRecord
			if err := getRecord(bucketJobs, k, v, &rec); err != nil {
				return fmt.Errorf("grouprestore: journal entry of job %s is corrupt: %w", k, err)
			}
			rec.Candidates = nil
			out = append(out, rec)
			return nil
		})
	})
	sort.Slice(out, func(a, b int) bool { return out[a].Created > out[b].Created })
	return out, err
}
