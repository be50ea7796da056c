package catalog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"time"

	"github.com/fleetvault/fleetvault/catalog/dedupe"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// record is a run of a client's pieces as stored in the pieces bucket: one
// or more backups with the same fields and content, differing only in
// backup time and job (docs/spec/catalog.md, "bbolt layout"). The run's key
// is the id of its oldest piece; its i-th piece (oldest first) has id
// key+i. A backup whose content and fields equal its client's newest piece
// extends that piece's run instead of adding a record.
//
// Version 2 (written): a version byte; client, name, type, owner,
// location and group as uvarint-length-prefixed strings; expiry as varint
// Unix nanoseconds (0: none); size as uvarint; the 32-byte content hash;
// the key of the client's next older run (uvarint length 0 or 8, then the
// key); the tag as a uvarint x: 0 none, odd a tag dictionary id (x>>1),
// even x>>1 key/value string pairs that follow; the optional fields as a
// uvarint count of key/value string pairs, sorted by key; a flags byte (bit 0: closed, the run
// takes no more pieces); the piece count; the oldest piece's time as
// varint Unix nanoseconds; the gaps to each next piece's time as a uvarint
// count of (gap uvarint, repeat uvarint) pairs; the jobs as a uvarint count
// of (repeat uvarint, string) pairs; then a CRC-32C of all before it.
//
// Version 1 (read only: catalogs written before runs) is one piece: the
// strings of version 2 with job after group, then time and expiry as
// varints, size, hash, previous key, tag and optional fields, and the
// CRC-32C. It reads as a closed run of one.
type record struct {
	Client, Name, Type, Owner, Location, Group string
	Expiry                                     int64
	Size                                       int64
	Tag                                        tagmatch.Tag
	Ref                                        dedupe.Ref
	Optional                                   map[string]string
	Prev                                       []byte   // the key of the client's next older run; nil for its oldest
	Times                                      []int64  // the pieces' backup times, oldest first; at least one
	Jobs                                       []string // the pieces' jobs, as Times
	Closed                                     bool     // the run takes no more pieces
	// tail counts the pieces of Times and Jobs read from the client's
	// idx/latest entry, not from the record (see maxTailBytes); not encoded.
	tail int
	// tagID is the tag's id in the tag dictionary (tagdict.go); 0: the
	// record carries its tag.
	tagID uint64
}

const (
	recordV1 = 1
	recordV2 = 2
	// runBits: a run's pieces have ids key to key+2^runBits-1, so a new
	// run's key is a fresh sequence number shifted left by runBits.
	runBits = 16
	// maxRunPieces and maxRunBytes bound a run: beyond either a new run
	// starts (a record is rewritten whole each time its run grows).
	maxRunPieces = 1 << runBits
	maxRunBytes  = 2048
	flagClosed   = 1
)

func (r *record) count() int    { return len(r.Times) }
func (r *record) newest() int64 { return r.Times[len(r.Times)-1] }

// piece returns the run's i-th piece (oldest first), with its id.
func (r *record) piece(id string, i int) Piece {
	p := Piece{ID: id, Client: r.Client, Name: r.Name, Type: r.Type, Owner: r.Owner, Location: r.Location,
		Group: r.Group, Job: r.Jobs[i], Time: time.Unix(0, r.Times[i]).UTC(), Size: r.Size, Tag: r.Tag, Ref: r.Ref, Optional: r.Optional}
	if r.Expiry != 0 {
		p.Expiry = time.Unix(0, r.Expiry).UTC()
	}
	return p
}

// toRecord is a run of the one piece p.
func toRecord(p Piece) record {
	r := record{Client: p.Client, Name: p.Name, Type: p.Type, Owner: p.Owner, Location: p.Location, Group: p.Group,
		Size: p.Size, Tag: p.Tag, Ref: p.Ref, Times: []int64{p.Time.UnixNano()}, Jobs: []string{p.Job}}
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

// sameRun reports whether piece p may join r: every field but time and
// job equal, the same content.
func (r *record) sameRun(p record) bool {
	return r.Client == p.Client && r.Name == p.Name && r.Type == p.Type && r.Owner == p.Owner &&
		r.Location == p.Location && r.Group == p.Group && r.Expiry == p.Expiry && r.Size == p.Size &&
		r.Ref == p.Ref && slices.Equal(r.Tag, p.Tag) && equalMaps(r.Optional, p.Optional)
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// part returns the run of r's pieces lo to hi-1, linked as r is.
func (r *record) part(lo, hi int) record {
	out := *r
	out.Times = slices.Clone(r.Times[lo:hi])
	out.Jobs = slices.Clone(r.Jobs[lo:hi])
	return out
}

func (r record) encode() []byte {
	b := make([]byte, 0, 128+len(r.Client)+len(r.Group)+len(r.Tag)*24)
	b = append(b, recordV2)
	for _, s := range []string{r.Client, r.Name, r.Type, r.Owner, r.Location, r.Group} {
		b = appendString(b, s)
	}
	b = binary.AppendVarint(b, r.Expiry)
	b = binary.AppendUvarint(b, uint64(r.Size))
	b = append(b, r.Ref[:]...)
	b = binary.AppendUvarint(b, uint64(len(r.Prev)))
	b = append(b, r.Prev...)
	if r.tagID != 0 {
		b = binary.AppendUvarint(b, r.tagID<<1|1)
	} else {
		b = binary.AppendUvarint(b, uint64(len(r.Tag))<<1)
		for _, a := range r.Tag {
			b = appendString(appendString(b, a.Key), a.Value)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(r.Optional)))
	for _, k := range sortedKeys(r.Optional) {
		b = appendString(appendString(b, k), r.Optional[k])
	}
	var flags byte
	if r.Closed {
		flags |= flagClosed
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(r.Times)))
	b = binary.AppendVarint(b, r.Times[0])
	b = appendGaps(b, r.Times)
	b = appendJobs(b, r.Jobs)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// appendGaps writes the gaps between times as (gap, repeat) pairs.
func appendGaps(b []byte, times []int64) []byte {
	type pair struct{ gap, n uint64 }
	var ps []pair
	for i := 1; i < len(times); i++ {
		g := uint64(times[i] - times[i-1])
		if len(ps) > 0 && ps[len(ps)-1].gap == g {
			ps[len(ps)-1].n++
			continue
		}
		ps = append(ps, pair{g, 1})
	}
	b = binary.AppendUvarint(b, uint64(len(ps)))
	for _, p := range ps {
		b = binary.AppendUvarint(binary.AppendUvarint(b, p.gap), p.n)
	}
	return b
}

// appendJobs writes jobs as (repeat, job) pairs.
func appendJobs(b []byte, jobs []string) []byte {
	n := 0
	for i := range jobs {
		if i == 0 || jobs[i] != jobs[i-1] {
			n++
		}
	}
	b = binary.AppendUvarint(b, uint64(n))
	for i := 0; i < len(jobs); {
		j := i + 1
		for j < len(jobs) && jobs[j] == jobs[i] {
			j++
		}
		b = appendString(binary.AppendUvarint(b, uint64(j-i)), jobs[i])
		i = j
	}
	return b
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

// count reads a count of items each taking at least two bytes.
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
	version := body[0]
	if version != recordV1 && version != recordV2 {
		return record{}, fmt.Errorf("%w: %w: unknown record version %d", ErrCorrupt, errRecord, version)
	}
	d := &recordReader{b: body[1:]}
	var r record
	for _, f := range []*string{&r.Client, &r.Name, &r.Type, &r.Owner, &r.Location, &r.Group} {
		*f = d.str("text field")
	}
	var time int64
	if version == recordV1 {
		r.Jobs = []string{d.str("text field")}
		time = d.varint("time")
		r.Times, r.Closed = []int64{time}, true
	}
	r.Expiry = d.varint("expiry")
	size := d.uvarint("size")
	if size > 1<<62 {
		d.fail("size")
	}
	r.Size = int64(size)
	d.fixed(r.Ref[:], "content hash")
	d.prev(&r)
	n := 0
	if version == recordV1 {
		n = d.count("tag")
	} else if x := d.uvarint("tag"); x&1 == 1 {
		r.tagID = x >> 1
	} else if n = int(x >> 1); uint64(n) > uint64(len(d.b))/2 {
		d.fail("tag")
		n = 0
	}
	if n > 0 {
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
	if version == recordV2 {
		d.run(&r)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	return r, d.err
}

func (d *recordReader) fixed(dst []byte, what string) {
	if d.err == nil && len(d.b) < len(dst) {
		d.fail(what)
	}
	if d.err == nil {
		copy(dst, d.b)
		d.b = d.b[len(dst):]
	}
}

func (d *recordReader) prev(r *record) {
	switch n := d.uvarint("previous run"); {
	case d.err != nil || n == 0:
	case n != 8 || len(d.b) < 8:
		d.fail("previous run")
	default:
		r.Prev = append([]byte(nil), d.b[:8]...)
		d.b = d.b[8:]
	}
}

// run reads a version 2 record's flags, times and jobs.
func (d *recordReader) run(r *record) {
	var flags [1]byte
	d.fixed(flags[:], "flags")
	if flags[0]&^flagClosed != 0 {
		d.fail("unknown flags")
	}
	r.Closed = flags[0]&flagClosed != 0
	n := d.uvarint("piece count")
	if d.err != nil || n == 0 || n > maxRunPieces {
		d.fail("piece count")
		return
	}
	r.Times = append(make([]int64, 0, n), d.varint("time"))
	r.Times = d.gaps(r.Times, int(n)-1)
	r.Jobs = d.jobs(make([]string, 0, n), int(n))
}

// gaps appends n times, read as (gap, repeat) pairs, to times.
func (d *recordReader) gaps(times []int64, n int) []int64 {
	want := len(times) + n
	for pairs := d.count("time gaps"); pairs > 0 && d.err == nil; pairs-- {
		gap, rep := d.uvarint("time gap"), d.uvarint("time gap repeat")
		if rep == 0 || rep > uint64(want-len(times)) || gap > 1<<62 {
			d.fail("time gaps")
			return times
		}
		for ; rep > 0; rep-- {
			t := times[len(times)-1]
			if t+int64(gap) < t {
				d.fail("time gap overflows")
				return times
			}
			times = append(times, t+int64(gap))
		}
	}
	if d.err == nil && len(times) != want {
		d.fail("time gaps do not add up to the piece count")
	}
	return times
}

// jobs appends n jobs, read as (repeat, job) pairs, to jobs.
func (d *recordReader) jobs(jobs []string, n int) []string {
	want := len(jobs) + n
	first := true
	for pairs := d.count("jobs"); pairs > 0 && d.err == nil; pairs-- {
		rep := d.uvarint("job repeat")
		job := d.str("job")
		if rep == 0 || rep > uint64(want-len(jobs)) || !first && jobs[len(jobs)-1] == job {
			d.fail("jobs")
			return jobs
		}
		first = false
		for ; rep > 0; rep-- {
			jobs = append(jobs, job)
		}
	}
	if d.err == nil && len(jobs) != want {
		d.fail("jobs do not add up to the piece count")
	}
	return jobs
}
