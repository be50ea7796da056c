package catalog

import (
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/fleetvault/fleetvault/catalog/frame"
)

// records reads and writes the JSON records of a file's buckets through the
// one record framing (package frame): every value carries a checksum, and
// in the resource database of an encrypted installation it is sealed with
// the repository key. A new kind of record (users, audit entries, keys of
// devices) gets both by going through put and get: every field of a
// resource record is secret, so none can be forgotten.
type records struct {
	tx    *bbolt.Tx
	codec frame.Codec
	file  string // for error messages
}

// res returns the records of the resource database in tx.
func (c *Catalog) resRecords(tx *bbolt.Tx) records {
	return records{tx: tx, codec: c.resCodec, file: c.mbr.Path(c.mbr.Resources)}
}

// put stores v as JSON under key in bucket bkt.
func (r records) put(bkt, key []byte, v any) error {
	b := r.tx.Bucket(bkt)
	if b == nil {
		return fmt.Errorf("catalog: %s: %w: bucket %s missing", r.file, ErrCorrupt, bkt)
	}
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("catalog: encode %s record %s: %w", bkt, key, err)
	}
	return b.Put(key, r.codec.Encode(bkt, key, body))
}

// get decodes the record under key into v; found is false when there is none.
func (r records) get(bkt, key []byte, v any) (found bool, err error) {
	b := r.tx.Bucket(bkt)
	if b == nil {
		return false, nil
	}
	val := b.Get(key)
	if val == nil {
		return false, nil
	}
	return true, r.decode(bkt, key, val, v)
}

// each calls fn for every record of bucket bkt in key order, with a decoder
// for its value.
func (r records) each(bkt []byte, fn func(k []byte, decode func(v any) error) error) error {
	b := r.tx.Bucket(bkt)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, val []byte) error {
		return fn(k, func(v any) error { return r.decode(bkt, k, val, v) })
	})
}

// decode opens one stored value. Records written before frames (legacy
// JSON) are read as they are, until the file is next opened for writing.
func (r records) decode(bkt, key, val []byte, v any) error {
	body := val
	if frame.Legacy(val) && framed(r.tx) {
		return recordError(r.file, bkt, key, fmt.Errorf("%w: not a record frame (byte 0x%02x)", frame.ErrDamaged, val[0]))
	}
	if !frame.Legacy(val) {
		var err error
		if body, err = r.codec.Decode(bkt, key, val); err != nil {
			return recordError(r.file, bkt, key, err)
		}
	}
	if q, ok := v.(quickDecoder); ok && q.quickDecode(body) {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return recordError(r.file, bkt, key, fmt.Errorf("does not decode: %v", err))
	}
	return nil
}

// quickDecoder is a record read in bulk (the history) that reads its own
// plain JSON faster than encoding/json. quickDecode reports false for
// anything it does not handle, and encoding/json reads it instead; when it
// reports true, the record is what encoding/json would have made
// (FuzzHistoryQuickDecode).
type quickDecoder interface {
	quickDecode(body []byte) bool
}

// RecordError names a damaged record: the file, the bucket and the key.
// It wraps ErrCorrupt, and frame.ErrSealed when a key was needed.
type RecordError struct {
	File, Bucket, Key string
	Err               error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("%s: bucket %s, key %q: %v", e.File, e.Bucket, e.Key, e.Err)
}

func (e *RecordError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

func recordError(file string, bkt, key []byte, err error) error {
	return &RecordError{File: file, Bucket: string(bkt), Key: string(key), Err: err}
}

// reframe rewrites, in bucket bkt, every legacy value (written before
// frames) as a frame, and with a new codec every frame; it returns how many
// it rewrote.
func reframe(tx *bbolt.Tx, bkt []byte, from, to frame.Codec, all bool) (int, error) {
	b := tx.Bucket(bkt)
	if b == nil {
		return 0, nil
	}
	type kv struct{ k, v []byte }
	var redo []kv
	err := b.ForEach(func(k, v []byte) error {
		switch {
		case v == nil: // a nested bucket or an index entry
			return nil
		case frame.Legacy(v):
			redo = append(redo, kv{append([]byte(nil), k...), append([]byte(nil), v...)})
		case all:
			body, err := from.Decode(bkt, k, v)
			if err != nil {
				return recordError(string(bkt), bkt, k, err)
			}
			redo = append(redo, kv{append([]byte(nil), k...), body})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, e := range redo {
		if err := b.Put(e.k, to.Encode(bkt, e.k, e.v)); err != nil {
			return 0, err
		}
	}
	return len(redo), nil
}
