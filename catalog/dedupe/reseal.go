package dedupe

import (
	"fmt"

	"go.etcd.io/bbolt"
)

// Reseal rewrites every payload of the store in tx (inline objects and
// chunks): each is read with this store's cipher and written with to's,
// which encrypts a store in clear (to has a cipher), rotates its key (both
// have) or decrypts it (to has none). Content, hashes and reference counts
// do not change; the stats' stored bytes follow the new record sizes. The
// old records' pages are freed, not overwritten: compact the file
// afterwards so no old payload stays readable in it. tx must be writable.
func (s *Store) Reseal(tx *bbolt.Tx, to *Store) (n int, err error) {
	b, err := s.buckets(tx, "reseal")
	if err != nil {
		return 0, err
	}
	if to.err != nil {
		return 0, to.err
	}
	var delta int64
	type kv struct{ k, v []byte }
	for _, bk := range []struct {
		bkt  *bbolt.Bucket
		kind byte
	}{{b.objects, 'o'}, {b.chunks, 'c'}} {
		var redo []kv
		err := bk.bkt.ForEach(func(k, v []byte) error {
			if len(k) != hashLen {
				return fmt.Errorf("dedupe: reseal: key %x: %w: not a hash", k, ErrCorrupt)
			}
			h := Ref(k)
			var p payload
			var err error
			if bk.kind == 'c' {
				p, err = decodeChunk(v)
			} else {
				var o object
				if o, err = decodeObject(v); err == nil && o.kind != kindInline {
					return nil // a manifest holds hashes and lengths only
				}
				p = o.inline
			}
			if err != nil {
				return fmt.Errorf("dedupe: reseal %s: %w: %w", h, ErrCorrupt, err)
			}
			data, err := s.decompress(nil, p, sealAD(bk.kind, h))
			if err != nil {
				return fmt.Errorf("dedupe: reseal %s: %w", h, err)
			}
			np := to.compress(data, sealAD(bk.kind, h))
			rec := encodeChunk(np)
			if bk.kind == 'o' {
				rec = encodeInline(np)
			}
			delta += int64(len(rec) - len(v))
			redo = append(redo, kv{append([]byte(nil), k...), rec})
			return nil
		})
		if err != nil {
			return 0, err
		}
		for _, e := range redo {
			if err := bk.bkt.Put(e.k, e.v); err != nil {
				return 0, fmt.Errorf("dedupe: reseal: %w", err)
			}
		}
		n += len(redo)
	}
	if err := b.addStats(Stats{StoredBytes: delta}); err != nil {
		return 0, fmt.Errorf("dedupe: reseal: %w", err)
	}
	return n, nil
}
