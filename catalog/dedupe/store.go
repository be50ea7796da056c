package dedupe

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/klauspost/compress/zstd"
	"go.etcd.io/bbolt"
)

// Defaults for the zero Options.
const (
	DefaultChunkThreshold = 64 << 10
	DefaultZstdLevel      = 3
)

// Options configure a Store. The zero value is a sensible default. Options
// affect only how new content is written: any Store reads any store.
type Options struct {
	// ChunkThreshold: content longer than this many bytes is split into
	// content-defined chunks; shorter content is stored whole. 0 means
	// DefaultChunkThreshold; negative means never chunk.
	ChunkThreshold int
	// ZstdLevel is the zstd compression level, 1 (fastest) to 22 (smallest);
	// 0 means DefaultZstdLevel.
	ZstdLevel int
	// Chunker selects the chunking algorithm; "" means ChunkerFastCDC.
	Chunker Chunker
	// Cipher, when set, seals every payload (the content of inline objects
	// and chunks) with authenticated encryption; nil stores them in clear.
	// Records are found by the SHA-256 of their plaintext either way.
	Cipher Cipher
}

// Cipher is authenticated encryption with associated data (a
// *repokey.Key). Seal appends to dst; Open appends the plaintext to dst and
// fails when sealed was not made by Seal with the same key and ad.
type Cipher interface {
	Seal(dst, plaintext, ad []byte) []byte
	Open(dst, sealed, ad []byte) ([]byte, error)
}

// ErrSealed is wrapped when content is encrypted and the store has no key.
var ErrSealed = errors.New("content is encrypted and no repository key was given")

// Store is a content-addressed store kept in buckets of a bbolt database.
// Every method works inside the caller's transaction, so content and the
// catalog records that refer to it commit (or roll back) together.
//
// A Store is safe for concurrent use: it holds only its options and its
// (concurrency-safe) zstd encoder and decoder; bbolt serialises writers.
type Store struct {
	threshold int
	split     splitter
	cipher    Cipher
	enc       *zstd.Encoder
	dec       *zstd.Decoder
	err       error // a bad Options value, returned by every method
}

// New returns a Store with opts. A bad option (an unknown chunker) is
// reported by Init and every later call.
func New(opts Options) *Store {
	s := &Store{threshold: opts.ChunkThreshold, cipher: opts.Cipher}
	if s.threshold == 0 {
		s.threshold = DefaultChunkThreshold
	}
	if s.threshold > maxRecordRaw {
		s.err = fmt.Errorf("dedupe: chunk threshold %d over the largest inline object, %d bytes", s.threshold, maxRecordRaw)
		return s
	}
	level := opts.ZstdLevel
	if level == 0 {
		level = DefaultZstdLevel
	}
	if level < 1 || level > 22 {
		s.err = fmt.Errorf("dedupe: zstd level %d out of range 1-22", level)
		return s
	}
	if s.split, s.err = newSplitter(opts.Chunker); s.err != nil {
		return s
	}
	// Content is hash-checked on every read, so zstd's own checksum would be
	// 4 redundant bytes per record.
	s.enc, s.err = zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
		zstd.WithEncoderCRC(false)) // WithLowerEncoderMem made 1 KiB documents 3x slower to compress
	if s.err != nil {
		s.err = fmt.Errorf("dedupe: zstd encoder: %w", s.err)
		return s
	}
	s.dec, s.err = zstd.NewReader(nil,
		zstd.WithDecoderMaxMemory(maxRecordRaw),
		zstd.WithDecodeAllCapLimit(true))
	if s.err != nil {
		s.err = fmt.Errorf("dedupe: zstd decoder: %w", s.err)
	}
	return s
}

// Init creates the store's buckets (all named "dedupe/...") in tx if they do
// not exist, and checks the format version of an existing store.
func (s *Store) Init(tx *bbolt.Tx) error {
	if s.err != nil {
		return s.err
	}
	for _, name := range [][]byte{bucketObjects, bucketChunks, bucketObjRefs, bucketChunkRefs, bucketMeta} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("dedupe: init: bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	switch v := meta.Get(keyVersion); {
	case v == nil:
		if err := meta.Put(keyVersion, []byte{formatVersion}); err != nil {
			return fmt.Errorf("dedupe: init: %w", err)
		}
	case len(v) != 1 || v[0] != formatVersion:
		return fmt.Errorf("dedupe: init: store format version %x, this program reads version %d", v, formatVersion)
	}
	if meta.Get(keyStats) == nil {
		if err := meta.Put(keyStats, Stats{}.encode()); err != nil {
			return fmt.Errorf("dedupe: init: %w", err)
		}
	}
	return nil
}

// buckets are the store's buckets within one transaction.
type buckets struct {
	objects, chunks, objRefs, chunkRefs, meta *bbolt.Bucket
}

func (s *Store) buckets(tx *bbolt.Tx, op string) (buckets, error) {
	if s.err != nil {
		return buckets{}, s.err
	}
	b := buckets{
		objects: tx.Bucket(bucketObjects), chunks: tx.Bucket(bucketChunks),
		objRefs: tx.Bucket(bucketObjRefs), chunkRefs: tx.Bucket(bucketChunkRefs),
		meta: tx.Bucket(bucketMeta),
	}
	if b.objects == nil || b.chunks == nil || b.objRefs == nil || b.chunkRefs == nil || b.meta == nil {
		return buckets{}, fmt.Errorf("dedupe: %s: the store's buckets are missing (call Init first)", op)
	}
	return b, nil
}

// addStats applies a change to the stored counters.
func (b buckets) addStats(d Stats) error {
	cur, err := decodeStats(b.meta.Get(keyStats))
	if err != nil {
		return fmt.Errorf("stats: %w: %w", ErrCorrupt, err)
	}
	cur.Objects += d.Objects
	cur.Chunks += d.Chunks
	cur.ChunkedObjects += d.ChunkedObjects
	cur.RawBytes += d.RawBytes
	cur.StoredBytes += d.StoredBytes
	cur.References += d.References
	cur.LogicalBytes += d.LogicalBytes
	return b.meta.Put(keyStats, cur.encode())
}

// Stats returns the store's counters.
func (s *Store) Stats(tx *bbolt.Tx) (Stats, error) {
	b, err := s.buckets(tx, "stats")
	if err != nil {
		return Stats{}, err
	}
	st, err := decodeStats(b.meta.Get(keyStats))
	if err != nil {
		return Stats{}, fmt.Errorf("dedupe: stats: %w: %w", ErrCorrupt, err)
	}
	return st, nil
}

// Put stores data once and adds one reference to it. added reports whether
// the content was new. tx must be writable.
func (s *Store) Put(tx *bbolt.Tx, data []byte) (ref Ref, added bool, err error) {
	ref = RefOf(data)
	b, err := s.buckets(tx, "put")
	if err != nil {
		return ref, false, err
	}
	d := Stats{References: 1, LogicalBytes: int64(len(data))}
	var count uint64
	if c := b.objRefs.Get(ref[:]); c != nil {
		if count, err = decodeCount(c); err != nil {
			return ref, false, fmt.Errorf("dedupe: put object %s: reference count: %w: %w", ref, ErrCorrupt, err)
		}
	}
	switch {
	case count == 0:
		added = true
		if err := s.putObject(b, ref, data, &d); err != nil {
			return ref, false, fmt.Errorf("dedupe: put object %s: %w", ref, err)
		}
	case b.objects.Get(ref[:]) == nil:
		// A count whose record was lost to damage: storing the content again
		// heals it. The counters already include the lost record, so the
		// rewrite's own changes to them are dropped.
		var heal Stats
		if err := s.putObject(b, ref, data, &heal); err != nil {
			return ref, false, fmt.Errorf("dedupe: put object %s (healing): %w", ref, err)
		}
	}
	if err := b.objRefs.Put(ref[:], encodeCount(count+1)); err != nil {
		return ref, false, fmt.Errorf("dedupe: put object %s: %w", ref, err)
	}
	if err := b.addStats(d); err != nil {
		return ref, false, fmt.Errorf("dedupe: put object %s: %w", ref, err)
	}
	return ref, added, nil
}

// putObject writes the record of new content, and its new chunks.
func (s *Store) putObject(b buckets, ref Ref, data []byte, d *Stats) error {
	var rec []byte
	if s.threshold < 0 || len(data) <= s.threshold {
		if len(data) > maxRecordRaw {
			return fmt.Errorf("content of %d bytes is over %d, the most stored whole (chunking is off)", len(data), maxRecordRaw)
		}
		rec = encodeInline(s.compress(data, sealAD('o', ref)))
	} else {
		pieces := s.split.split(data)
		entries := make([]chunkEntry, len(pieces))
		for i, p := range pieces {
			entries[i] = chunkEntry{hash: sha256.Sum256(p), length: uint64(len(p))}
			if err := s.putChunk(b, entries[i].hash, p, d); err != nil {
				return err
			}
		}
		rec = encodeManifest(uint64(len(data)), entries)
		d.ChunkedObjects++
	}
	if err := b.objects.Put(ref[:], rec); err != nil {
		return err
	}
	d.Objects++
	d.RawBytes += int64(len(data))
	d.StoredBytes += int64(len(rec))
	return nil
}

// putChunk adds a reference to a chunk, storing it if it is new.
func (s *Store) putChunk(b buckets, h Ref, p []byte, d *Stats) error {
	var count uint64
	if c := b.chunkRefs.Get(h[:]); c != nil {
		var err error
		if count, err = decodeCount(c); err != nil {
			return fmt.Errorf("chunk %s: reference count: %w: %w", h, ErrCorrupt, err)
		}
	}
	if count == 0 || b.chunks.Get(h[:]) == nil {
		rec := encodeChunk(s.compress(p, sealAD('c', h)))
		if err := b.chunks.Put(h[:], rec); err != nil {
			return fmt.Errorf("chunk %s: %w", h, err)
		}
		if count == 0 { // else healing a lost record, already counted
			d.Chunks++
			d.StoredBytes += int64(len(rec))
		}
	}
	if err := b.chunkRefs.Put(h[:], encodeCount(count+1)); err != nil {
		return fmt.Errorf("chunk %s: %w", h, err)
	}
	return nil
}

// sealAD is the associated data of a sealed payload: what it is (object
// or chunk) and its hash, so a payload moved to another record does not open.
func sealAD(kind byte, h Ref) []byte { return append([]byte{kind}, h[:]...) }

// compress returns data as a payload: zstd when that is smaller, raw if
// not; sealed with the store's cipher if it has one. The payload may alias
// data; bbolt copies values on commit.
func (s *Store) compress(data, ad []byte) payload {
	c := s.enc.EncodeAll(data, make([]byte, 0, len(data)))
	p := payload{flag: flagZstd, rawLen: uint64(len(data)), data: c}
	if len(c) >= len(data) {
		p = payload{flag: flagRaw, rawLen: uint64(len(data)), data: data}
	}
	if s.cipher != nil {
		p.flag |= flagSealed
		p.data = s.cipher.Seal(make([]byte, 0, len(p.data)+64), p.data, ad)
	}
	return p
}

// decompress appends the content of p to dst, opening it first if it is
// sealed. The result never aliases p.
func (s *Store) decompress(dst []byte, p payload, ad []byte) ([]byte, error) {
	if p.flag&flagSealed != 0 {
		if s.cipher == nil {
			return nil, ErrSealed
		}
		plain, err := s.cipher.Open(nil, p.data, ad)
		if err != nil {
			return nil, fmt.Errorf("%w: decryption failed (wrong key, or the record was altered or moved): %v", ErrCorrupt, err)
		}
		p.flag &^= flagSealed
		if p.flag == flagRaw && uint64(len(plain)) != p.rawLen {
			return nil, fmt.Errorf("%w: raw payload of %d bytes, header says %d", ErrCorrupt, len(plain), p.rawLen)
		}
		p.data = plain
	}
	if p.flag == flagRaw {
		return append(dst, p.data...), nil
	}
	n := len(dst)
	if uint64(cap(dst)-n) < p.rawLen {
		grown := make([]byte, n, uint64(n)+p.rawLen)
		copy(grown, dst)
		dst = grown
	}
	// The cap limit stops a corrupt frame from inflating past rawLen.
	out, err := s.dec.DecodeAll(p.data, dst[:n:uint64(n)+p.rawLen])
	if err != nil {
		return nil, fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
	}
	if uint64(len(out)-n) != p.rawLen {
		return nil, fmt.Errorf("%w: decompressed to %d bytes, record says %d", ErrCorrupt, len(out)-n, p.rawLen)
	}
	return out, nil
}

// Get returns the content named ref, after checking that it hashes to ref.
// Damaged content is an error wrapping ErrCorrupt that names the object (and
// the chunk), never data. Unknown refs give an error wrapping ErrNotFound.
func (s *Store) Get(tx *bbolt.Tx, ref Ref) ([]byte, error) {
	b, err := s.buckets(tx, "get")
	if err != nil {
		return nil, err
	}
	return s.get(b, ref)
}

func (s *Store) get(b buckets, ref Ref) ([]byte, error) {
	rec := b.objects.Get(ref[:])
	if rec == nil {
		return nil, fmt.Errorf("dedupe: get object %s: %w", ref, ErrNotFound)
	}
	o, err := decodeObject(rec)
	if err != nil {
		return nil, fmt.Errorf("dedupe: get object %s: %w: %w", ref, ErrCorrupt, err)
	}
	var data []byte
	if o.kind == kindInline {
		if data, err = s.decompress(nil, o.inline, sealAD('o', ref)); err != nil {
			return nil, fmt.Errorf("dedupe: get object %s: %w", ref, err)
		}
	} else {
		data = make([]byte, 0, min(o.size, maxRecordRaw)) // o.size is not trusted yet
		for i, c := range o.chunks {
			if data, err = s.readChunk(b, data, c); err != nil {
				return nil, fmt.Errorf("dedupe: get object %s: chunk %d %w", ref, i, err)
			}
		}
	}
	if RefOf(data) != ref {
		return nil, fmt.Errorf("dedupe: get object %s: %w: content hashes to %s", ref, ErrCorrupt, RefOf(data))
	}
	return data, nil
}

// readChunk appends chunk c to dst after checking its length and hash.
func (s *Store) readChunk(b buckets, dst []byte, c chunkEntry) ([]byte, error) {
	rec := b.chunks.Get(c.hash[:])
	if rec == nil {
		return nil, fmt.Errorf("%s: %w: chunk missing", c.hash, ErrCorrupt)
	}
	p, err := decodeChunk(rec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", c.hash, ErrCorrupt, err)
	}
	if p.rawLen != c.length {
		return nil, fmt.Errorf("%s: %w: chunk of %d bytes, manifest says %d", c.hash, ErrCorrupt, p.rawLen, c.length)
	}
	n := len(dst)
	if dst, err = s.decompress(dst, p, sealAD('c', c.hash)); err != nil {
		return nil, fmt.Errorf("%s: %w", c.hash, err)
	}
	if got := sha256.Sum256(dst[n:]); !bytes.Equal(got[:], c.hash[:]) {
		return nil, fmt.Errorf("%s: %w: content hashes to %x", c.hash, ErrCorrupt, got)
	}
	return dst, nil
}

// Release removes one reference to ref. At zero references the object is
// deleted, and with it every chunk no other object uses. freed is the number
// of stored bytes (records) deleted. tx must be writable.
func (s *Store) Release(tx *bbolt.Tx, ref Ref) (freed int64, err error) {
	b, err := s.buckets(tx, "release")
	if err != nil {
		return 0, err
	}
	c := b.objRefs.Get(ref[:])
	if c == nil {
		return 0, fmt.Errorf("dedupe: release object %s: %w", ref, ErrNotFound)
	}
	count, err := decodeCount(c)
	if err == nil && count == 0 {
		err = errors.New("zero")
	}
	if err != nil {
		return 0, fmt.Errorf("dedupe: release object %s: reference count: %w: %w", ref, ErrCorrupt, err)
	}
	rec := b.objects.Get(ref[:])
	if rec == nil {
		return 0, fmt.Errorf("dedupe: release object %s: %w: record missing (run Check)", ref, ErrCorrupt)
	}
	o, err := decodeObject(rec)
	if err != nil {
		return 0, fmt.Errorf("dedupe: release object %s: %w: %w", ref, ErrCorrupt, err)
	}
	d := Stats{References: -1, LogicalBytes: -int64(o.contentSize())}
	if count > 1 {
		err = b.objRefs.Put(ref[:], encodeCount(count-1))
	} else {
		freed, err = s.deleteObject(b, ref, o, int64(len(rec)), &d)
	}
	if err == nil {
		err = b.addStats(d)
	}
	if err != nil {
		return 0, fmt.Errorf("dedupe: release object %s: %w", ref, err)
	}
	return freed, nil
}

// deleteObject deletes an object whose last reference went, and releases its chunks.
func (s *Store) deleteObject(b buckets, ref Ref, o object, recLen int64, d *Stats) (int64, error) {
	if err := b.objRefs.Delete(ref[:]); err != nil {
		return 0, err
	}
	if err := b.objects.Delete(ref[:]); err != nil {
		return 0, err
	}
	freed := recLen
	d.Objects--
	d.RawBytes -= int64(o.contentSize())
	if o.kind == kindChunked {
		d.ChunkedObjects--
	}
	for _, c := range o.chunks {
		f, err := releaseChunk(b, c.hash, d)
		if err != nil {
			return 0, err
		}
		freed += f
	}
	d.StoredBytes -= freed
	return freed, nil
}

// releaseChunk removes one reference to a chunk, deleting it at zero.
func releaseChunk(b buckets, h Ref, d *Stats) (int64, error) {
	c := b.chunkRefs.Get(h[:])
	if c == nil {
		return 0, fmt.Errorf("chunk %s: %w: reference count missing", h, ErrCorrupt)
	}
	count, err := decodeCount(c)
	if err == nil && count == 0 {
		err = errors.New("zero")
	}
	if err != nil {
		return 0, fmt.Errorf("chunk %s: reference count: %w: %w", h, ErrCorrupt, err)
	}
	if count > 1 {
		return 0, b.chunkRefs.Put(h[:], encodeCount(count-1))
	}
	freed := int64(len(b.chunks.Get(h[:])))
	if err := b.chunkRefs.Delete(h[:]); err != nil {
		return 0, err
	}
	if err := b.chunks.Delete(h[:]); err != nil {
		return 0, err
	}
	d.Chunks--
	return freed, nil
}
