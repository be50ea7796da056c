package catalog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/fleetvault/fleetvault/catalog/dedupe"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// record is a piece as stored in the pieces bucket, in a compact binary
// form (docs/spec/catalog.md, "bbolt layout"): a version byte (1); client,
// name, type, owner, location, group and job as uvarint-length-prefixed
// strings; time and expiry as varint Unix nanoseconds (expiry 0: none); size
// as uvarint; the 32-byte content hash; the key of the client's previous
// piece (uvarint length 0 or 8, then the key); the tag as a uvarint count of
// key/value string pairs; the optional fields likewise, sorted by key.
type record struct {
	Client, Name, Type, Owner, Location, Group, Job string
	Time, Expiry                                    int64
	Size                                            int64
	Tag                                             tagmatch.Tag
	Ref                                             dedupe.Ref
	Optional                                        map[string]string
	Prev                                            []byte // the client's next older piece; nil for its oldest
}

const recordVersion = 1

func (r record) piece(id string) (Piece, error) {
	p := Piece{ID: id, Client: r.Client, Name: r.Name, Type: r.Type, Owner: r.Owner, Location: r.Location,
		Group: r.Group, Job: r.Job, Time: time.Unix(0, r.Time).UTC(), Size: r.Size, Tag: r.Tag, Ref: r.Ref, Optional: r.Optional}
	if r.Expiry != 0 {
		p.Expiry = time.Unix(0, r.Expiry).UTC()
	}
	return p, nil
}

func toRecord(p Piece) record {
	r := record{Client: p.Client, Name: p.Name, Type: p.Type, Owner: p.Owner, Location: p.Location, Group: p.Group,
		Job: p.Job, Time: p.Time.UnixNano(), Size: p.Size, Tag: p.Tag, Ref: p.Ref}
	if len(p.Optional) > 0 {
		r.Optional = p.Optional
	}
	if len(p.Tag) == 0 {
		r.Tag = nil
	}
	if !p.Expiry.IsZero() {
		r.Expiry = p.Expiry.UnixNano()
	}
	return r
}

func (r record) encode() []byte {
	b := make([]byte, 0, 128+len(r.Client)+len(r.Group)+len(r.Tag)*24)
	b = append(b, recordVersion)
	for _, s := range []string{r.Client, r.Name, r.Type, r.Owner, r.Location, r.Group, r.Job} {
		b = appendString(b, s)
	}
	b = binary.AppendVarint(b, r.Time)
	b = binary.AppendVarint(b, r.Expiry)
	b = binary.AppendUvarint(b, uint64(r.Size))
	b = append(b, r.Ref[:]...)
	b = binary.AppendUvarint(b, uint64(len(r.Prev)))
	b = append(b, r.Prev...)
	b = binary.AppendUvarint(b, uint64(len(r.Tag)))
	for _, a := range r.Tag {
		b = appendString(appendString(b, a.Key), a.Value)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Optional)))
	for _, k := range sortedKeys(r.Optional) {
		b = appendString(appendString(b, k), r.Optional[k])
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

var errRecord = errors.New("record does not decode")

// recordReader decodes with bounds checks: damaged input is an error, never
// a panic or a huge allocation.
type recordReader struct {
	b   []byte
	err error
}

func (d *recordReader) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %w: %s", ErrCorrupt, errRecord, what)
	}
}

func (d *recordReader) uvarint(what string) uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recordReader) varint(what string) int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recordReader) str(what string) string {
	n := d.uvarint(what)
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail(what)
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// count reads a pair count; each pair takes at least two bytes.
func (d *recordReader) count(what string) int {
	n := d.uvarint(what)
	if d.err != nil || n > uint64(len(d.b))/2 {
		d.fail(what)
		return 0
	}
	return int(n)
}

func decodeRecord(b []byte) (record, error) {
	if len(b) < 5 {
		return record{}, fmt.Errorf("%w: %w: %d bytes is too short", ErrCorrupt, errRecord, len(b))
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return record{}, fmt.Errorf("%w: %w: checksum mismatch", ErrCorrupt, errRecord)
	}
	b = body
	if b[0] != recordVersion {
		return record{}, fmt.Errorf("%w: %w: unknown record version %d", ErrCorrupt, errRecord, b[0])
	}
	d := &recordReader{b: b[1:]}
	var r record
	for _, f := range []*string{&r.Client, &r.Name, &r.Type, &r.Owner, &r.Location, &r.Group, &r.Job} {
		*f = d.str("text field")
	}
	r.Time = d.varint("time")
	r.Expiry = d.varint("expiry")
	size := d.uvarint("size")
	if size > 1<<62 {
		d.fail("size")
	}
	r.Size = int64(size)
	if d.err == nil && len(d.b) < len(r.Ref) {
		d.fail("content hash")
	}
	if d.err == nil {
		copy(r.Ref[:], d.b)
		d.b = d.b[len(r.Ref):]
	}
	switch n := d.uvarint("previous piece"); {
	case d.err != nil || n == 0:
	case n != 8 || len(d.b) < 8:
		d.fail("previous piece")
	default:
		r.Prev = append([]byte(nil), d.b[:8]...)
		d.b = d.b[8:]
	}
	if n := d.count("tag"); n > 0 {
		r.Tag = make(tagmatch.Tag, n)
		for i := range r.Tag {
			r.Tag[i] = tagmatch.Attr{Key: d.str("tag key"), Value: d.str("tag value")}
		}
	}
	if n := d.count("optional fields"); n > 0 {
		r.Optional = make(map[string]string, n)
		for range n {
			k := d.str("optional key")
			r.Optional[k] = d.str("optional value")
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	return r, d.err
}
