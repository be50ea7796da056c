package dedupe

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Storage format version 1; docs/spec/dedupe.md is normative.
const formatVersion = 1

// Bucket names. Every bucket the store uses is named "dedupe/...".
var (
	bucketObjects   = []byte("dedupe/objects")   // Ref → object record
	bucketChunks    = []byte("dedupe/chunks")    // chunk SHA-256 → chunk record
	bucketObjRefs   = []byte("dedupe/objrefs")   // Ref → uint64 BE reference count
	bucketChunkRefs = []byte("dedupe/chunkrefs") // chunk SHA-256 → uint64 BE reference count
	bucketMeta      = []byte("dedupe/meta")      // "version", "stats"
)

var (
	keyVersion = []byte("version")
	keyStats   = []byte("stats")
)

// Object kinds (byte 1 of an object record).
const (
	kindInline  = 0x01 // the content itself, possibly compressed
	kindChunked = 0x02 // a manifest of chunks
)

// Compression flags.
const (
	flagRaw  = 0x00 // payload is the content as is
	flagZstd = 0x01 // payload is one or more zstd frames
	// flagSealed, or'ed with one of the above: the payload is a nonce and
	// the sealed (XChaCha20-Poly1305) raw or zstd bytes, under the
	// repository key of an encrypted installation.
	flagSealed = 0x80
)

// Decoder limits: a record claiming more is corrupt, not a reason to allocate.
const (
	maxRecordRaw  = 64 << 20 // raw length of one inline object or chunk: bounds what a damaged record can make a reader allocate
	maxObjectSize = 1 << 40  // total length of a chunked object
	hashLen       = 32
)

// errFormat marks a value that does not follow the storage format.
var errFormat = errors.New("bad record")

// payload is content as stored: a compression flag, the raw length, and the
// (possibly compressed) bytes. It aliases the record it was decoded from.
type payload struct {
	flag   byte
	rawLen uint64
	data   []byte
}

// chunkEntry is one line of a manifest.
type chunkEntry struct {
	hash   Ref
	length uint64
}

// object is a decoded object record: inline (payload set) or chunked
// (size and chunks set).
type object struct {
	kind   byte
	inline payload
	size   uint64
	chunks []chunkEntry
}

// contentSize returns the length of the object's content.
func (o *object) contentSize() uint64 {
	if o.kind == kindInline {
		return o.inline.rawLen
	}
	return o.size
}

func appendPayload(b []byte, p payload) []byte {
	b = append(b, p.flag)
	b = binary.AppendUvarint(b, p.rawLen)
	return append(b, p.data...)
}

func decodePayload(b []byte) (payload, error) {
	if len(b) < 1 {
		return payload{}, fmt.Errorf("%w: no compression flag", errFormat)
	}
	p := payload{flag: b[0]}
	if base := p.flag &^ flagSealed; base != flagRaw && base != flagZstd {
		return payload{}, fmt.Errorf("%w: unknown compression flag 0x%02x", errFormat, p.flag)
	}
	n, k := uvarint(b[1:])
	if k <= 0 {
		return payload{}, fmt.Errorf("%w: bad raw length", errFormat)
	}
	if n > maxRecordRaw {
		return payload{}, fmt.Errorf("%w: raw length %d over the limit %d", errFormat, n, maxRecordRaw)
	}
	p.rawLen, p.data = n, b[1+k:]
	if p.flag == flagRaw && uint64(len(p.data)) != p.rawLen { // sealed: checked once opened
		return payload{}, fmt.Errorf("%w: raw payload of %d bytes, header says %d", errFormat, len(p.data), p.rawLen)
	}
	return p, nil
}

// encodeChunk returns a chunk record.
func encodeChunk(p payload) []byte {
	b := make([]byte, 0, 2+binary.MaxVarintLen64+len(p.data))
	b = append(b, formatVersion)
	return appendPayload(b, p)
}

// decodeChunk decodes a chunk record. The payload aliases b.
func decodeChunk(b []byte) (payload, error) {
	if len(b) < 1 || b[0] != formatVersion {
		return payload{}, fmt.Errorf("%w: not a version %d chunk record", errFormat, formatVersion)
	}
	return decodePayload(b[1:])
}

// encodeInline returns the record of an object stored whole.
func encodeInline(p payload) []byte {
	b := make([]byte, 0, 3+binary.MaxVarintLen64+len(p.data))
	b = append(b, formatVersion, kindInline)
	return appendPayload(b, p)
}

// encodeManifest returns the record of a chunked object.
func encodeManifest(size uint64, chunks []chunkEntry) []byte {
	b := make([]byte, 0, 2+2*binary.MaxVarintLen64+len(chunks)*(hashLen+3))
	b = append(b, formatVersion, kindChunked)
	b = binary.AppendUvarint(b, size)
	b = binary.AppendUvarint(b, uint64(len(chunks)))
	for _, c := range chunks {
		b = append(b, c.hash[:]...)
		b = binary.AppendUvarint(b, c.length)
	}
	return b
}

// decodeObject decodes an object record. An inline payload aliases b.
func decodeObject(b []byte) (object, error) {
	if len(b) < 2 || b[0] != formatVersion {
		return object{}, fmt.Errorf("%w: not a version %d object record", errFormat, formatVersion)
	}
	switch b[1] {
	case kindInline:
		p, err := decodePayload(b[2:])
		return object{kind: kindInline, inline: p}, err
	case kindChunked:
		return decodeManifest(b[2:])
	}
	return object{}, fmt.Errorf("%w: unknown object kind 0x%02x", errFormat, b[1])
}

func decodeManifest(b []byte) (object, error) {
	o := object{kind: kindChunked}
	size, k := uvarint(b)
	if k <= 0 || size > maxObjectSize {
		return object{}, fmt.Errorf("%w: bad manifest size", errFormat)
	}
	b = b[k:]
	n, k := uvarint(b)
	if k <= 0 {
		return object{}, fmt.Errorf("%w: bad manifest chunk count", errFormat)
	}
	b = b[k:]
	if n == 0 || n > uint64(len(b)/(hashLen+1)) {
		return object{}, fmt.Errorf("%w: manifest claims %d chunks in %d bytes", errFormat, n, len(b))
	}
	o.size, o.chunks = size, make([]chunkEntry, n)
	var sum uint64
	for i := range o.chunks {
		if len(b) < hashLen+1 {
			return object{}, fmt.Errorf("%w: manifest truncated at chunk %d", errFormat, i)
		}
		copy(o.chunks[i].hash[:], b[:hashLen])
		l, k := uvarint(b[hashLen:])
		if k <= 0 || l == 0 || l > maxRecordRaw {
			return object{}, fmt.Errorf("%w: manifest chunk %d: bad length", errFormat, i)
		}
		o.chunks[i].length = l
		sum += l
		b = b[hashLen+k:]
	}
	if len(b) != 0 {
		return object{}, fmt.Errorf("%w: %d bytes after the manifest", errFormat, len(b))
	}
	if sum != size {
		return object{}, fmt.Errorf("%w: manifest chunks sum to %d bytes, header says %d", errFormat, sum, size)
	}
	return o, nil
}

// Reference counts are 8-byte big-endian unsigned integers.
func encodeCount(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func decodeCount(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: reference count of %d bytes, want 8", errFormat, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// Stats describes the store's content. The counters are kept in the store
// and updated in the same transaction as the content, so they are exact.
type Stats struct {
	Objects        int64 // distinct objects stored
	Chunks         int64 // distinct chunks stored
	ChunkedObjects int64 // objects stored as a manifest of chunks
	RawBytes       int64 // content bytes of the distinct objects
	StoredBytes    int64 // bytes of the object and chunk records (compressed content and manifests)
	References     int64 // sum of the objects' reference counts
	LogicalBytes   int64 // content bytes of all references: what a store without dedupe would hold
}

const statsLen = 7 * 8

func (s Stats) encode() []byte {
	b := make([]byte, 0, statsLen)
	for _, v := range []int64{s.Objects, s.Chunks, s.ChunkedObjects, s.RawBytes, s.StoredBytes, s.References, s.LogicalBytes} {
		b = binary.BigEndian.AppendUint64(b, uint64(v))
	}
	return b
}

func decodeStats(b []byte) (Stats, error) {
	if len(b) != statsLen {
		return Stats{}, fmt.Errorf("%w: stats of %d bytes, want %d", errFormat, len(b), statsLen)
	}
	var v [7]int64
	for i := range v {
		v[i] = int64(binary.BigEndian.Uint64(b[8*i:]))
		if v[i] < 0 {
			return Stats{}, fmt.Errorf("%w: negative counter in stats", errFormat)
		}
	}
	return Stats{v[0], v[1], v[2], v[3], v[4], v[5], v[6]}, nil
}

// uvarint decodes a minimally encoded unsigned LEB128 integer (as
// encoding/binary writes it), so each value has exactly one encoding. It
// returns n <= 0 on error, as binary.Uvarint does.
func uvarint(b []byte) (uint64, int) {
	v, n := binary.Uvarint(b)
	if n > 1 && b[n-1] == 0 {
		return 0, -n // a trailing zero group: not minimal
	}
	return v, n
}
