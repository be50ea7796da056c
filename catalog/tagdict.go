package catalog

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"go.etcd.io/bbolt"

	"github.com/fleetvault/fleetvault/tagmatch"
)

// The tag dictionary: a fleet has few distinct tags (a model, a firmware,
// a zone) shared by many devices, so a run refers to its tag by a small id
// instead of carrying its strings. tags holds id (8 bytes) -> the tag (a
// uvarint count of key/value string pairs) and a CRC-32C of it;
// idx/tagdict holds the first 16 bytes of the tag's SHA-256 -> its id.
// Entries are never removed: a tag no run refers to any more costs one
// entry. Catalogs written before runs have neither bucket, and their
// records carry their tags.
var (
	bktTags    = []byte("tags")
	bktTagDict = []byte("idx/tagdict")
)

func encodeTag(t tagmatch.Tag) []byte {
	b := binary.AppendUvarint(nil, uint64(len(t)))
	for _, a := range t {
		b = appendString(appendString(b, a.Key), a.Value)
	}
	return b
}

// internTag sets r's tag id, adding its tag to the dictionary when new. A
// run without tag, or whose tag's hash prefix is another tag's, keeps its
// tag in its record.
func internTag(tx *bbolt.Tx, r *record) error {
	if len(r.Tag) == 0 {
		r.tagID = 0
		return nil
	}
	tags, dict := tx.Bucket(bktTags), tx.Bucket(bktTagDict)
	if tags == nil || dict == nil {
		return nil
	}
	enc := encodeTag(r.Tag)
	sum := sha256.Sum256(enc)
	if id := dict.Get(sum[:16]); id != nil {
		if v := tags.Get(id); len(id) == 8 && len(v) == len(enc)+4 && bytes.Equal(v[:len(enc)], enc) {
			r.tagID = binary.BigEndian.Uint64(id)
		}
		return nil
	}
	seq, err := tags.NextSequence()
	if err != nil {
		return err
	}
	id := binary.BigEndian.AppendUint64(nil, seq)
	if err := tags.Put(id, binary.LittleEndian.AppendUint32(enc, crc32.Checksum(enc, castagnoli))); err != nil {
		return err
	}
	r.tagID = seq
	return dict.Put(sum[:16], id)
}

// resolveTag reads r's tag from the dictionary when its record refers to one.
func resolveTag(tx *bbolt.Tx, r *record) error {
	if r.tagID == 0 {
		return nil
	}
	var v []byte
	if b := tx.Bucket(bktTags); b != nil {
		v = b.Get(binary.BigEndian.AppendUint64(nil, r.tagID))
	}
	if v == nil {
		return fmt.Errorf("%w: tag %d is not in the tag dictionary", ErrCorrupt, r.tagID)
	}
	if len(v) < 5 || crc32.Checksum(v[:len(v)-4], castagnoli) != binary.LittleEndian.Uint32(v[len(v)-4:]) {
		return fmt.Errorf("%w: tag %d: checksum mismatch", ErrCorrupt, r.tagID)
	}
	d := &recordReader{b: v[:len(v)-4]}
	n := d.count("tag")
	t := make(tagmatch.Tag, n)
	for i := range t {
		t[i] = tagmatch.Attr{Key: d.str("tag key"), Value: d.str("tag value")}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil || n == 0 {
		return fmt.Errorf("tag %d: %w", r.tagID, orEmpty(d.err))
	}
	r.Tag = t
	return nil
}

func orEmpty(err error) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: empty tag", ErrCorrupt)
}
