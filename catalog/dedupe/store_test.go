package dedupe

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"go.etcd.io/bbolt"
)

// mustOpen returns an initialised store in a fresh bbolt file.
func mustOpen(t testing.TB, opts Options) (*bbolt.DB, *Store) {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "dedupe.db"), 0o600, &bbolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := New(opts)
	if err := db.Update(s.Init); err != nil {
		t.Fatal(err)
	}
	return db, s
}

func put(t testing.TB, db *bbolt.DB, s *Store, data []byte) (ref Ref, added bool) {
	t.Helper()
	err := db.Update(func(tx *bbolt.Tx) error {
		var err error
		ref, added, err = s.Put(tx, data)
		return err
	})
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	return ref, added
}

func get(db *bbolt.DB, s *Store, ref Ref) (data []byte, err error) {
	err = db.View(func(tx *bbolt.Tx) error {
		data, err = s.Get(tx, ref)
		return err
	})
	return data, err
}

func release(t testing.TB, db *bbolt.DB, s *Store, ref Ref) (freed int64) {
	t.Helper()
	err := db.Update(func(tx *bbolt.Tx) error {
		var err error
		freed, err = s.Release(tx, ref)
		return err
	})
	if err != nil {
		t.Fatalf("release: %v", err)
	}
	return freed
}

func stats(t testing.TB, db *bbolt.DB, s *Store) (st Stats) {
	t.Helper()
	if err := db.View(func(tx *bbolt.Tx) error {
		var err error
		st, err = s.Stats(tx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return st
}

// problems runs Check and returns what it reported.
func problems(t testing.TB, db *bbolt.DB, s *Store, readData bool) []Problem {
	t.Helper()
	var ps []Problem
	if err := db.View(func(tx *bbolt.Tx) error {
		return s.Check(tx, readData, func(p Problem) { ps = append(ps, p) })
	}); err != nil {
		t.Fatal(err)
	}
	return ps
}

// encodeSettings encodes a settings document as agent.EncodeSettings does
// (RFC 8949 core deterministic CBOR), without depending on the agent package.
func encodeSettings(t testing.TB, s map[string]any) []byte {
	t.Helper()
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		t.Fatal(err)
	}
	b, err := em.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeForTest(b []byte, v any) error { return cbor.Unmarshal(b, v) }

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// largeSettings is a settings document of about zones*110 bytes: a building
// controller's zone table, deterministic CBOR as devices send it.
func largeSettings(t testing.TB, seed uint64, zones int) []byte {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	list := make([]any, zones)
	for i := range list {
		list[i] = map[string]any{
			"name":     fmt.Sprintf("floor %d room %03d", i/40, i%40),
			"setpoint": 19.5 + float64(r.IntN(8))/2,
			"mode":     []string{"heat", "cool", "auto"}[r.IntN(3)],
			"schedule": []any{uint64(r.IntN(8) + 5), uint64(r.IntN(6) + 17)},
			"enabled":  r.IntN(10) > 0,
		}
	}
	return encodeSettings(t, map[string]any{"zones": list, "firmware": "4.2.1", "site": "HQ"})
}

func TestRef(t *testing.T) {
	ref := RefOf([]byte("abc"))
	const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	tests := []struct {
		name, in string
		want     Ref
		wantErr  bool
	}{
		{"lower", abc, ref, false},
		{"upper", strings.ToUpper(abc), ref, false},
		{"short", abc[:63], Ref{}, true},
		{"long", abc + "0", Ref{}, true},
		{"not hex", "zz" + abc[2:], Ref{}, true},
		{"empty", "", Ref{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRef(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ParseRef(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
	if ref.String() != abc {
		t.Fatalf("String() = %s, want %s", ref, abc)
	}
}

func TestPutGetRelease(t *testing.T) {
	tests := []struct {
		name    string
		data    []byte
		chunked bool
	}{
		{"empty", []byte{}, false},
		{"one byte", []byte{0xa0}, false},
		{"settings", largeSettings(t, 1, 10), false},
		{"incompressible", randomBytes(1, 3000), false},
		{"at threshold", randomBytes(2, DefaultChunkThreshold), false},
		{"large settings", largeSettings(t, 2, 3000), true},
		{"large random", randomBytes(3, 300<<10), true},
	}
	for _, tt := range tests {
		for _, c := range []Chunker{ChunkerFastCDC, ChunkerRabin} {
			t.Run(tt.name+"/"+string(c), func(t *testing.T) {
				db, s := mustOpen(t, Options{Chunker: c})
				ref, added := put(t, db, s, tt.data)
				if ref != RefOf(tt.data) || !added {
					t.Fatalf("first put: ref %s added %v", ref, added)
				}
				if _, added := put(t, db, s, tt.data); added {
					t.Fatal("second put of the same content reported added")
				}
				got, err := get(db, s, ref)
				if err != nil || !bytes.Equal(got, tt.data) {
					t.Fatalf("get: %d bytes, %v; want the %d bytes put", len(got), err, len(tt.data))
				}
				st := stats(t, db, s)
				if st.Objects != 1 || st.References != 2 || (st.ChunkedObjects == 1) != tt.chunked {
					t.Fatalf("stats %+v", st)
				}
				if ps := problems(t, db, s, true); len(ps) != 0 {
					t.Fatalf("check: %v", ps)
				}
				if f := release(t, db, s, ref); f != 0 {
					t.Fatalf("first release freed %d, want 0", f)
				}
				if f := release(t, db, s, ref); f != st.StoredBytes {
					t.Fatalf("last release freed %d, want %d", f, st.StoredBytes)
				}
				if st := stats(t, db, s); st != (Stats{}) {
					t.Fatalf("stats after releasing all: %+v", st)
				}
				if _, err := get(db, s, ref); !errors.Is(err, ErrNotFound) {
					t.Fatalf("get after release: %v, want ErrNotFound", err)
				}
			})
		}
	}
}

func TestDedupeAcrossDevices(t *testing.T) {
	db, s := mustOpen(t, Options{})
	doc := encodeSettings(t, map[string]any{"setpoint": 21.5, "mode": "auto", "schedule": []any{uint64(6), uint64(22)}})
	const devices = 10000
	err := db.Update(func(tx *bbolt.Tx) error {
		for i := range devices {
			// Each device sends its own copy of the bytes.
			if _, _, err := s.Put(tx, bytes.Clone(doc)); err != nil {
				return fmt.Errorf("device %d: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st := stats(t, db, s)
	want := Stats{Objects: 1, RawBytes: int64(len(doc)), References: devices, LogicalBytes: devices * int64(len(doc))}
	want.StoredBytes = st.StoredBytes
	if st != want || st.StoredBytes > int64(len(doc))+8 {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
}

func TestChunkReuseAfterInsert(t *testing.T) {
	for _, c := range []Chunker{ChunkerFastCDC, ChunkerRabin} {
		t.Run(string(c), func(t *testing.T) {
			db, s := mustOpen(t, Options{Chunker: c})
			base := largeSettings(t, 5, 4000) // about 400 KiB
			mid := len(base) / 2
			edited := append(append(append([]byte{}, base[:mid]...), []byte("a new zone inserted here")...), base[mid:]...)
			put(t, db, s, base)
			before := stats(t, db, s)
			put(t, db, s, edited)
			after := stats(t, db, s)
			added := after.Chunks - before.Chunks
			if added > 3 || added < 1 {
				t.Fatalf("the insert added %d chunks of %d; want 1-3", added, before.Chunks)
			}
			if got, err := get(db, s, RefOf(edited)); err != nil || !bytes.Equal(got, edited) {
				t.Fatalf("get edited: %v", err)
			}
			t.Logf("%s: %d chunks, the insert added %d", c, before.Chunks, added)
		})
	}
}

func TestCorruptionIsDetectedOnRead(t *testing.T) {
	small := largeSettings(t, 8, 20)
	large := largeSettings(t, 9, 3000)
	tests := []struct {
		name   string
		data   []byte
		bucket []byte
		mutate func(v []byte) []byte
		want   string // in the error, beside the object's ref
	}{
		{"flip last byte of inline", small, bucketObjects, func(v []byte) []byte { v[len(v)-1] ^= 1; return v }, ""},
		{"flip compression flag", small, bucketObjects, func(v []byte) []byte { v[2] ^= 1; return v }, ""},
		{"truncate inline", small, bucketObjects, func(v []byte) []byte { return v[:len(v)/2] }, ""},
		{"flip byte in a chunk", large, bucketChunks, func(v []byte) []byte { v[len(v)/2] ^= 0x40; return v }, "chunk"},
		{"empty manifest", large, bucketObjects, func(v []byte) []byte { return v[:2] }, ""},
		{"flip byte in manifest hash", large, bucketObjects, func(v []byte) []byte { v[len(v)-10] ^= 1; return v }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, s := mustOpen(t, Options{})
			ref, _ := put(t, db, s, tt.data)
			err := db.Update(func(tx *bbolt.Tx) error {
				b := tx.Bucket(tt.bucket)
				k, v := b.Cursor().First()
				if bytes.Equal(tt.bucket, bucketChunks) {
					k, v = b.Cursor().Last()
				}
				return b.Put(bytes.Clone(k), tt.mutate(bytes.Clone(v)))
			})
			if err != nil {
				t.Fatal(err)
			}
			data, err := get(db, s, ref)
			if !errors.Is(err, ErrCorrupt) || data != nil {
				t.Fatalf("get: %d bytes, %v; want nil, ErrCorrupt", len(data), err)
			}
			if !strings.Contains(err.Error(), ref.String()) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not name object %s and %q", err, ref, tt.want)
			}
			if ps := problems(t, db, s, true); len(ps) == 0 {
				t.Fatal("check found nothing")
			}
		})
	}
}

func TestReleaseReclaimsSharedChunks(t *testing.T) {
	db, s := mustOpen(t, Options{})
	a := largeSettings(t, 11, 3000)
	b := append(bytes.Clone(a), []byte("tail")...) // shares all but the last chunk
	refA, _ := put(t, db, s, a)
	refB, _ := put(t, db, s, b)
	both := stats(t, db, s)
	freedA := release(t, db, s, refA)
	if ps := problems(t, db, s, true); len(ps) != 0 {
		t.Fatalf("check after releasing A: %v", ps)
	}
	if got, err := get(db, s, refB); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("B after releasing A: %v", err)
	}
	onlyB := stats(t, db, s)
	if freedA <= 0 || freedA >= both.StoredBytes/2 {
		t.Fatalf("releasing A freed %d of %d stored bytes; want its manifest and unique chunks only", freedA, both.StoredBytes)
	}
	if freedB := release(t, db, s, refB); freedB != onlyB.StoredBytes {
		t.Fatalf("releasing B freed %d, want %d", freedB, onlyB.StoredBytes)
	}
	if st := stats(t, db, s); st != (Stats{}) {
		t.Fatalf("stats after releasing all: %+v", st)
	}
	err := db.Update(func(tx *bbolt.Tx) error {
		_, err := s.Release(tx, refB)
		return err
	})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("release of a released object: %v, want ErrNotFound", err)
	}
}

func TestCheckReportsEachProblem(t *testing.T) {
	small := largeSettings(t, 12, 20)
	large := largeSettings(t, 13, 3000)
	firstKey := func(tx *bbolt.Tx, bucket []byte) []byte {
		k, _ := tx.Bucket(bucket).Cursor().First()
		return bytes.Clone(k)
	}
	tests := []struct {
		name     string
		readData bool
		damage   func(tx *bbolt.Tx) error
		want     []string // Problem.Object prefixes, in order
	}{
		{"clean", true, func(*bbolt.Tx) error { return nil }, nil},
		{"object count missing", false, func(tx *bbolt.Tx) error {
			r := RefOf(small)
			return tx.Bucket(bucketObjRefs).Delete(r[:])
		}, []string{"object " + RefOf(small).String(), "stats"}},
		{"orphan object count", false, func(tx *bbolt.Tx) error {
			r := RefOf([]byte("gone"))
			return tx.Bucket(bucketObjRefs).Put(r[:], encodeCount(1))
		}, []string{"object " + RefOf([]byte("gone")).String()}},
		{"chunk missing", false, func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketChunks).Delete(firstKey(tx, bucketChunks))
		}, []string{"object " + RefOf(large).String(), "chunk", "stats"}},
		{"chunk count wrong", false, func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketChunkRefs).Put(firstKey(tx, bucketChunkRefs), encodeCount(9))
		}, []string{"chunk"}},
		{"unused chunk", false, func(tx *bbolt.Tx) error {
			h := RefOf([]byte("stray"))
			return tx.Bucket(bucketChunks).Put(h[:], encodeChunk(payload{flag: flagRaw, rawLen: 5, data: []byte("stray")}))
		}, []string{"chunk " + RefOf([]byte("stray")).String(), "stats"}},
		{"chunk flipped, read", true, func(tx *bbolt.Tx) error {
			k := firstKey(tx, bucketChunks)
			v := bytes.Clone(tx.Bucket(bucketChunks).Get(k))
			v[len(v)-1] ^= 1
			return tx.Bucket(bucketChunks).Put(k, v)
		}, []string{"object " + RefOf(large).String(), "chunk"}},
		{"chunk flipped, not read", false, func(tx *bbolt.Tx) error {
			k := firstKey(tx, bucketChunks)
			v := bytes.Clone(tx.Bucket(bucketChunks).Get(k))
			v[len(v)-1] ^= 1
			return tx.Bucket(bucketChunks).Put(k, v)
		}, nil},
		{"stats tampered", false, func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(keyStats, Stats{Objects: 99}.encode())
		}, []string{"stats"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, s := mustOpen(t, Options{})
			put(t, db, s, small)
			put(t, db, s, large)
			if err := db.Update(tt.damage); err != nil {
				t.Fatal(err)
			}
			ps := problems(t, db, s, tt.readData)
			if len(ps) != len(tt.want) {
				t.Fatalf("check reported %d problems, want %d: %v", len(ps), len(tt.want), ps)
			}
			for i, p := range ps {
				if !strings.HasPrefix(p.Object, tt.want[i]) || p.Err == nil {
					t.Errorf("problem %d: %v; want it about %q", i, p, tt.want[i])
				}
			}
		})
	}
}

func TestConcurrentPuts(t *testing.T) {
	db, s := mustOpen(t, Options{})
	docs := [][]byte{largeSettings(t, 20, 5), largeSettings(t, 21, 5), largeSettings(t, 22, 1500)}
	const workers, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				err := db.Update(func(tx *bbolt.Tx) error {
					_, _, err := s.Put(tx, docs[(w+i)%len(docs)])
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	// Readers run beside the writers.
	for range 2 {
		wg.Go(func() {
			for range each {
				if _, err := get(db, s, RefOf(docs[0])); err != nil && !errors.Is(err, ErrNotFound) {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := stats(t, db, s)
	if st.Objects != 3 || st.References != workers*each {
		t.Fatalf("stats %+v; want 3 objects, %d references", st, workers*each)
	}
	if ps := problems(t, db, s, true); len(ps) != 0 {
		t.Fatalf("check: %v", ps)
	}
}

func TestBadOptionsAndUninitialised(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"unknown chunker", Options{Chunker: "gzip"}},
		{"level too high", Options{ZstdLevel: 23}},
		{"level negative", Options{ZstdLevel: -1}},
		{"threshold over the inline limit", Options{ChunkThreshold: maxRecordRaw + 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := bbolt.Open(filepath.Join(t.TempDir(), "x.db"), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(New(tt.opts).Init); err == nil {
				t.Fatal("Init accepted bad options")
			}
		})
	}
	t.Run("not initialised", func(t *testing.T) {
		db, err := bbolt.Open(filepath.Join(t.TempDir(), "x.db"), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		err = db.Update(func(tx *bbolt.Tx) error {
			_, _, err := New(Options{}).Put(tx, []byte("x"))
			return err
		})
		if err == nil || !strings.Contains(err.Error(), "Init") {
			t.Fatalf("put before Init: %v", err)
		}
	})
}

func TestReleaseOfDamagedObjectChangesNothing(t *testing.T) {
	db, s := mustOpen(t, Options{})
	large := largeSettings(t, 30, 3000)
	ref, _ := put(t, db, s, large)
	before := stats(t, db, s)
	err := db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketObjects).Put(ref[:], []byte{formatVersion, kindChunked, 0xff})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		_, err := s.Release(tx, ref)
		return err
	})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), ref.String()) {
		t.Fatalf("release of a damaged object: %v; want ErrCorrupt naming %s", err, ref)
	}
	if after := stats(t, db, s); after != before {
		t.Fatalf("stats changed: %+v, was %+v", after, before)
	}
}
