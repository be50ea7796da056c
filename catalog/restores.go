package catalog

import (
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"time"

	"go.etcd.io/bbolt"
)

// Restore history buckets, in the default catalog.
var (
	bktRestores         = []byte("restores")           // sequence -> event (JSON)
	bktIdxRestoreDevice = []byte("idx/restore-device") // device 0 time seq -> nothing
	bktIdxRestoreJob    = []byte("idx/restore-job")    // job 0 time seq -> nothing
)

// Restore outcomes; others may be recorded, these are the standard ones.
const (
	OutcomeRestored  = "restored"  // written and verified
	OutcomeFailed    = "failed"    // not restored: see Detail
	OutcomeSkipped   = "skipped"   // not attempted (no match, ambiguous, excluded)
	OutcomeUnchanged = "unchanged" // already had these settings
)

// RestoreEvent records what was restored to which device, when, by which job
// and with what outcome.
type RestoreEvent struct {
	ID      string    `json:"id,omitempty"` // assigned by RecordRestores
	Device  string    `json:"device"`
	PieceID string    `json:"piece,omitempty"`
	Ref     string    `json:"ref,omitempty"` // content hash written (hex)
	Job     string    `json:"job,omitempty"`
	Time    time.Time `json:"time"`
	Outcome string    `json:"outcome"`
	Detail  string    `json:"detail,omitempty"`
}

// RestoreQuery selects restore events; empty fields do not restrict. Results
// are newest first; Limit > 0 caps them.
type RestoreQuery struct {
	Device, Job string
	From, To    time.Time
	Limit       int
}

func (q RestoreQuery) match(e RestoreEvent) bool {
	return (q.Device == "" || e.Device == q.Device) && (q.Job == "" || e.Job == q.Job) &&
		Query{From: q.From, To: q.To}.inTime(e.Time)
}

// RecordRestores appends restore events in one transaction (concurrent calls
// share a commit). Zero times are set to now.
func (c *Catalog) RecordRestores(ctx context.Context, events []RestoreEvent) error {
	if err := c.writable(); err != nil {
		return err
	}
	for i, e := range events {
		if err := checkName("restore event device", e.Device); err != nil {
			return fmt.Errorf("restore event %d: %w", i, err)
		}
		if e.Outcome == "" {
			return fmt.Errorf("catalog: restore event %d (device %s): %w: no outcome", i, e.Device, ErrInvalid)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	now := c.opts.Now().UTC()
	return batch(c.shards[0].db, "catalog: record restores", func(tx *bbolt.Tx) error {
		for _, e := range events {
			if e.Time.IsZero() {
				e.Time = now
			}
			if err := putRestore(tx, e, 0); err != nil {
				return err
			}
		}
		return nil
	})
}

// putRestore stores e under seq, or the next sequence when seq is 0.
func putRestore(tx *bbolt.Tx, e RestoreEvent, seq uint64) error {
	b := tx.Bucket(bktRestores)
	if seq == 0 {
		var err error
		if seq, err = b.NextSequence(); err != nil {
			return err
		}
	} else if seq > b.Sequence() {
		if err := b.SetSequence(seq); err != nil {
			return err
		}
	}
	key := binary.BigEndian.AppendUint64(nil, seq)
	e.ID = fmt.Sprintf("%016x", seq)
	e.Time = e.Time.UTC()
	if err := (records{tx: tx}).put(bktRestores, key, e); err != nil {
		return err
	}
	tk := timeKey(e.Time)
	suffix := append(tk[:], key...)
	if err := tx.Bucket(bktIdxRestoreDevice).Put(append(prefixOf(e.Device), suffix...), nil); err != nil {
		return err
	}
	return tx.Bucket(bktIdxRestoreJob).Put(append(prefixOf(e.Job), suffix...), nil)
}

// Restores returns the restore events matching q, newest first.
func (c *Catalog) Restores(q RestoreQuery) ([]RestoreEvent, error) {
	var out []RestoreEvent
	err := view(c.shards[0].db, "catalog: restores", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bktRestores)
		if b == nil {
			return nil
		}
		emit := func(key []byte) (bool, error) {
			v := b.Get(key)
			if v == nil {
				return false, fmt.Errorf("catalog: restore event %x: %w: indexed but missing", key, ErrCorrupt)
			}
			var e RestoreEvent
			if err := (records{tx: tx, file: c.shards[0].path}).decode(bktRestores, key, v, &e); err != nil {
				return false, fmt.Errorf("catalog: restore event: %w", err)
			}
			if q.match(e) {
				out = append(out, e)
			}
			return q.Limit > 0 && len(out) >= q.Limit, nil
		}
		switch {
		case q.Device != "" || q.Job != "":
			bkt, prefix := bktIdxRestoreDevice, prefixOf(q.Device)
			if q.Device == "" {
				bkt, prefix = bktIdxRestoreJob, prefixOf(q.Job)
			}
			return reverseRange(tx.Bucket(bkt).Cursor(), prefix, q.From, q.To, func(h hit) (bool, error) { return emit(h.key) })
		default:
			cur := b.Cursor()
			for k, _ := cur.Last(); k != nil; k, _ = cur.Prev() {
				if stop, err := emit(k); err != nil || stop {
					return err
				}
			}
			return nil
		}
	})
	if q.Device == "" && q.Job == "" {
		sort.SliceStable(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	}
	return out, err
}
