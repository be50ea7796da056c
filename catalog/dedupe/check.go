package dedupe

import (
	"errors"
	"fmt"

	"go.etcd.io/bbolt"
)

// Check walks every object and chunk and reports each problem it finds:
// records that do not decode, missing or wrong reference counts, chunks a
// manifest names but that are missing, chunks nothing uses, and counters that
// disagree with the content. With readData it also decompresses and
// hash-checks every chunk and every object. Check returns an error only when
// it cannot run at all; problems go to report, one call each.
func (s *Store) Check(tx *bbolt.Tx, readData bool, report func(Problem)) error {
	if report == nil {
		return errors.New("dedupe: check: report function is nil")
	}
	b, err := s.buckets(tx, "check")
	if err != nil {
		return err
	}
	c := checker{s: s, b: b, readData: readData, report: report, chunkUse: map[Ref]uint64{}}
	steps := []func() error{c.objects, c.objectCounts, c.chunks, c.chunkCounts, c.stats}
	for _, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("dedupe: check: %w", err)
		}
	}
	return nil
}

// checker holds one Check's state: what the content says the counters should be.
type checker struct {
	s        *Store
	b        buckets
	readData bool
	report   func(Problem)
	chunkUse map[Ref]uint64 // manifest entries naming each chunk
	want     Stats
}

func (c *checker) problem(what string, key []byte, format string, args ...any) {
	c.report(Problem{Object: fmt.Sprintf("%s %x", what, key), Err: fmt.Errorf(format, args...)})
}

func (c *checker) objects() error {
	return c.b.objects.ForEach(func(k, v []byte) error {
		if len(k) != hashLen {
			c.problem("object", k, "%w: key of %d bytes, want %d", ErrCorrupt, len(k), hashLen)
			return nil
		}
		ref := Ref(k)
		o, err := decodeObject(v)
		if err != nil {
			c.problem("object", k, "%w: %w", ErrCorrupt, err)
			return nil
		}
		count, err := decodeCount(c.b.objRefs.Get(k))
		switch {
		case c.b.objRefs.Get(k) == nil:
			c.problem("object", k, "%w: no reference count", ErrCorrupt)
		case err != nil:
			c.problem("object", k, "%w: reference count: %w", ErrCorrupt, err)
		case count == 0:
			c.problem("object", k, "%w: reference count is zero", ErrCorrupt)
		}
		c.want.Objects++
		c.want.RawBytes += int64(o.contentSize())
		c.want.StoredBytes += int64(len(v))
		c.want.References += int64(count)
		c.want.LogicalBytes += int64(count) * int64(o.contentSize())
		if o.kind == kindChunked {
			c.want.ChunkedObjects++
			for i, e := range o.chunks {
				c.chunkUse[e.hash]++
				if c.b.chunks.Get(e.hash[:]) == nil {
					c.problem("object", k, "%w: chunk %d %s missing", ErrCorrupt, i, e.hash)
				}
			}
		}
		if c.readData {
			if _, err := c.s.get(c.b, ref); err != nil {
				c.report(Problem{Object: "object " + ref.String(), Err: err})
			}
		}
		return nil
	})
}

// objectCounts finds reference counts whose object is gone.
func (c *checker) objectCounts() error {
	return c.b.objRefs.ForEach(func(k, v []byte) error {
		if c.b.objects.Get(k) == nil {
			c.problem("object", k, "%w: reference count %x without an object record", ErrCorrupt, v)
		}
		return nil
	})
}

func (c *checker) chunks() error {
	return c.b.chunks.ForEach(func(k, v []byte) error {
		p, err := decodeChunk(v)
		if err != nil {
			c.problem("chunk", k, "%w: %w", ErrCorrupt, err)
			return nil
		}
		c.want.Chunks++
		c.want.StoredBytes += int64(len(v))
		var h Ref
		copy(h[:], k)
		use := c.chunkUse[h]
		switch count, err := decodeCount(c.b.chunkRefs.Get(k)); {
		case use == 0:
			c.problem("chunk", k, "unused: no manifest names it (space leaked)")
		case err != nil:
			c.problem("chunk", k, "%w: reference count: %w", ErrCorrupt, err)
		case count != use:
			c.problem("chunk", k, "%w: reference count %d, manifests name it %d times", ErrCorrupt, count, use)
		}
		if c.readData && len(k) == hashLen {
			if _, err := c.s.readChunk(c.b, nil, chunkEntry{hash: h, length: p.rawLen}); err != nil {
				c.report(Problem{Object: "chunk " + h.String(), Err: err})
			}
		}
		return nil
	})
}

// chunkCounts finds chunk reference counts whose chunk is gone.
func (c *checker) chunkCounts() error {
	return c.b.chunkRefs.ForEach(func(k, v []byte) error {
		if c.b.chunks.Get(k) == nil {
			c.problem("chunk", k, "%w: reference count %x without a chunk record", ErrCorrupt, v)
		}
		return nil
	})
}

func (c *checker) stats() error {
	got, err := decodeStats(c.b.meta.Get(keyStats))
	if err != nil {
		c.report(Problem{Object: "stats", Err: fmt.Errorf("%w: %w", ErrCorrupt, err)})
		return nil
	}
	if got != c.want {
		c.report(Problem{Object: "stats", Err: fmt.Errorf("%w: counters say %+v, content says %+v", ErrCorrupt, got, c.want)})
	}
	return nil
}
