package frame

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Frame layout (docs/spec/catalog.md, "Record frames"): the marker byte, a
// kind byte, the body (clear: the record; sealed: nonce and ciphertext) and
// a little-endian CRC-32C (Castagnoli) of bucket, 0x00, key, 0x00 and every
// preceding byte of the frame.
const (
	Marker     = 0xFE
	KindClear  = 0x00
	KindSealed = 0x01
	headerLen  = 2
	crcLen     = 4
)

// Errors wrapped by Decode and Verify, checked with errors.Is.
var (
	// ErrDamaged: the frame is short, has an unknown kind, fails its
	// checksum, or (sealed) fails authentication.
	ErrDamaged = errors.New("record damaged")
	// ErrSealed: the record is sealed and the codec has no key.
	ErrSealed = errors.New("record is encrypted and no repository key was given")
	// ErrNotSealed: the codec has a key and the record is in clear, which an
	// encrypted store never writes.
	ErrNotSealed = errors.New("record is not encrypted in an encrypted store")
)

// Cipher is authenticated encryption with associated data. Seal appends to
// dst; Open appends the plaintext to dst and fails when sealed was not made
// by Seal with the same key and ad.
type Cipher interface {
	Seal(dst, plaintext, ad []byte) []byte
	Open(dst, sealed, ad []byte) ([]byte, error)
}

// Codec writes and reads frames; the zero Codec writes clear frames.
type Codec struct {
	c Cipher
}

// New returns a Codec that seals with c, or a clear one when c is nil.
func New(c Cipher) Codec { return Codec{c: c} }

// Sealed reports whether the codec encrypts.
func (x Codec) Sealed() bool { return x.c != nil }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func sum(bucket, key, b []byte) uint32 {
	h := crc32.Update(0, castagnoli, bucket)
	h = crc32.Update(h, castagnoli, []byte{0})
	h = crc32.Update(h, castagnoli, key)
	h = crc32.Update(h, castagnoli, []byte{0})
	return crc32.Update(h, castagnoli, b)
}

// ad is the associated data of a sealed record: where it is stored.
func ad(bucket, key []byte) []byte {
	b := make([]byte, 0, len(bucket)+len(key)+1)
	b = append(append(b, bucket...), 0)
	return append(b, key...)
}

// Encode frames body for key in bucket.
func (x Codec) Encode(bucket, key, body []byte) []byte {
	b := make([]byte, headerLen, headerLen+len(body)+crcLen+64)
	b[0] = Marker
	if x.c == nil {
		b[1] = KindClear
		b = append(b, body...)
	} else {
		b[1] = KindSealed
		b = x.c.Seal(b, body, ad(bucket, key))
	}
	return binary.LittleEndian.AppendUint32(b, sum(bucket, key, b))
}

// Decode checks v, the value stored under key in bucket, and returns its
// record. The result never aliases v.
func (x Codec) Decode(bucket, key, v []byte) ([]byte, error) {
	if err := Verify(bucket, key, v); err != nil {
		return nil, err
	}
	body := v[headerLen : len(v)-crcLen]
	switch {
	case v[1] == KindClear && x.c != nil:
		return nil, ErrNotSealed
	case v[1] == KindClear:
		return append([]byte(nil), body...), nil
	case x.c == nil:
		return nil, ErrSealed
	}
	out, err := x.c.Open(nil, body, ad(bucket, key))
	if err != nil {
		return nil, fmt.Errorf("%w: decryption failed (wrong key, or the record was altered or moved): %v", ErrDamaged, err)
	}
	return out, nil
}

// Verify checks the frame's marker, kind and checksum; it needs no key.
func Verify(bucket, key, v []byte) error {
	switch {
	case len(v) < headerLen+crcLen:
		return fmt.Errorf("%w: %d bytes is too short for a record frame", ErrDamaged, len(v))
	case v[0] != Marker:
		return fmt.Errorf("%w: no frame marker (byte 0x%02x)", ErrDamaged, v[0])
	case v[1] != KindClear && v[1] != KindSealed:
		return fmt.Errorf("%w: unknown frame kind 0x%02x", ErrDamaged, v[1])
	}
	n := len(v) - crcLen
	if got, want := sum(bucket, key, v[:n]), binary.LittleEndian.Uint32(v[n:]); got != want {
		return fmt.Errorf("%w: checksum mismatch (stored %08x, computed %08x)", ErrDamaged, want, got)
	}
	return nil
}

// Legacy reports whether v predates frames: a format-1 JSON or CBOR record,
// which never starts with the frame marker.
func Legacy(v []byte) bool { return len(v) > 0 && v[0] != Marker }
