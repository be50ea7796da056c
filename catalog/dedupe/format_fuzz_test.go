package dedupe

import (
	"bytes"
	"errors"
	"testing"

	"go.etcd.io/bbolt"
)

// seedRecords are valid records of each kind, and some damaged ones.
func seedRecords(f *testing.F) {
	s := New(Options{})
	small := []byte("settings settings settings settings settings")
	f.Add(encodeInline(s.compress(small, nil)))
	f.Add(encodeInline(payload{flag: flagRaw, rawLen: 3, data: []byte("abc")}))
	f.Add(encodeManifest(5, []chunkEntry{{hash: RefOf([]byte("ab")), length: 2}, {hash: RefOf([]byte("cde")), length: 3}}))
	f.Add(encodeChunk(s.compress(small, nil)))
	f.Add([]byte{})
	f.Add([]byte{formatVersion})
	f.Add([]byte{formatVersion, kindChunked, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{formatVersion, kindInline, flagZstd, 0x80, 0x80, 0x80, 0x04, 0x28, 0xb5, 0x2f, 0xfd})
}

// FuzzDecodeRecords: no stored value makes a decoder panic, and what decodes
// re-encodes to the same bytes (the format has one encoding per value).
func FuzzDecodeRecords(f *testing.F) {
	seedRecords(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if o, err := decodeObject(b); err == nil {
			var again []byte
			if o.kind == kindInline {
				again = encodeInline(o.inline)
			} else {
				again = encodeManifest(o.size, o.chunks)
			}
			if !bytes.Equal(again, b) {
				t.Fatalf("object record %x re-encodes as %x", b, again)
			}
		}
		if p, err := decodeChunk(b); err == nil {
			if again := encodeChunk(p); !bytes.Equal(again, b) {
				t.Fatalf("chunk record %x re-encodes as %x", b, again)
			}
		}
		_, _ = decodeCount(b)
		_, _ = decodeStats(b)
	})
}

// FuzzGet: whatever value sits under an object's key (and under a chunk's),
// Get neither panics nor returns data that does not hash to the ref.
func FuzzGet(f *testing.F) {
	seedRecords(f)
	db, s := mustOpen(f, Options{})
	ref := RefOf([]byte("the object"))
	chunk := RefOf([]byte("ab"))
	f.Fuzz(func(t *testing.T, b []byte) {
		err := db.Update(func(tx *bbolt.Tx) error {
			if err := tx.Bucket(bucketObjects).Put(ref[:], b); err != nil {
				return err
			}
			return tx.Bucket(bucketChunks).Put(chunk[:], b)
		})
		if err != nil {
			t.Fatal(err)
		}
		data, err := get(db, s, ref)
		if err == nil && RefOf(data) != ref {
			t.Fatalf("get returned %x, which does not hash to the ref", data)
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("get: %v, want ErrCorrupt", err)
		}
		_ = problems(t, db, s, true)
	})
}
