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

func openJournal(path string) (*journal, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("grouprestore: open journal %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketJobs)
		return err
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
			v, err := cbor.Marshal(o)
			if err != nil {
				return err
			}
			if err := b.Put(seqKey(i), v); err != nil {
				return err
			}
		}
		return nil
	})
}

func putJob(tx *bolt.Tx, rec JobRecord) error {
	v, err := cbor.Marshal(rec)
	if err != nil {
		return fmt.Errorf("grouprestore: encode job %s: %w", rec.ID, err)
	}
	return tx.Bucket(bucketJobs).Put([]byte(rec.ID), v)
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
			v, err := cbor.Marshal(w.o)
			if err != nil {
				return err
			}
			if err := b.Put(seqKey(w.seq), v); err != nil {
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
		if err := cbor.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("grouprestore: journal entry of job %s is corrupt: %w", id, err)
		}
		b := tx.Bucket(membersBucket(id))
		if b == nil {
			return fmt.Errorf("grouprestore: journal of job %s has no plan", id)
		}
		devs = make([]DeviceOutcome, 0, rec.Total)
		return b.ForEach(func(k, v []byte) error {
			var o DeviceOutcome
			if err := cbor.Unmarshal(v, &o); err != nil {
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
			if err := cbor.Unmarshal(v, &rec); err != nil {
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
