package catalog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// fillAppendOnly packs the pages of buckets whose keys only ever grow.
func fillAppendOnly(tx *bbolt.Tx) {
	tx.Bucket(bktPieces).FillPercent = 0.95
	tx.Bucket(bktIdxTime).FillPercent = 0.95
}

// newer orders pieces by time, then key.
func newer(at int64, ak []byte, bt int64, bk []byte) bool {
	return at > bt || at == bt && bytes.Compare(ak, bk) > 0
}

// clientEntries are the client-level index entries a piece needs: its
// client in its group, and in its group under each tag attribute.
func clientEntries(r record) [][2][]byte {
	out := [][2][]byte{{bktIdxGroup, append(prefixOf(r.Group), r.Client...)}}
	for _, a := range r.Tag {
		out = append(out, [2][]byte{bktIdxTag, append(prefixOf(a.Key, a.Value, r.Group), r.Client...)})
	}
	return out
}

func timeEntry(r record, key []byte) []byte {
	tk := timeKey(time.Unix(0, r.Time))
	return append(tk[:], key...)
}

// headValue is an idx/latest value: the newest piece's key and time, so a
// merge of many clients' chains starts without reading their records.
func headValue(key []byte, t int64) []byte {
	tk := timeKey(time.Unix(0, t))
	return append(append(make([]byte, 0, 16), key...), tk[:]...)
}

// headOf returns a client's newest piece key and time, or a nil key.
func headOf(lb *bbolt.Bucket, client string) ([]byte, int64, error) {
	v := lb.Get([]byte(client))
	if v == nil {
		return nil, 0, nil
	}
	if len(v) != 16 {
		return nil, 0, fmt.Errorf("%w: client %s: newest-piece entry is %d bytes, want 16", ErrCorrupt, client, len(v))
	}
	return v[:8], int64(binary.BigEndian.Uint64(v[8:]) ^ (1 << 63)), nil
}

// storePiece writes a new piece under key: linked into its client's chain
// (usually as the new head), its time entry, and any client-level index
// entries not there yet (an existing entry is not rewritten, so its page
// stays clean).
func storePiece(tx *bbolt.Tx, key []byte, r record) error {
	lb := tx.Bucket(bktLatest)
	head, _, err := headOf(lb, r.Client)
	if err != nil {
		return err
	}
	head = bytes.Clone(head)
	var headRec record
	if head != nil {
		var ok bool
		var err error
		if headRec, ok, err = getRecord(tx, head); err != nil || !ok {
			return fmt.Errorf("client %s: newest piece %x: %w", r.Client, head, orMissing(err))
		}
	}
	if head == nil || newer(r.Time, key, headRec.Time, head) {
		r.Prev = head
		if err := lb.Put([]byte(r.Client), headValue(key, r.Time)); err != nil {
			return err
		}
	} else if err := insertOlder(tx, key, &r, head, headRec); err != nil {
		return err
	}
	if err := tx.Bucket(bktPieces).Put(key, r.encode()); err != nil {
		return err
	}
	if err := tx.Bucket(bktIdxTime).Put(timeEntry(r, key), nil); err != nil {
		return err
	}
	for _, e := range clientEntries(r) {
		b := tx.Bucket(e[0])
		if b.Get(e[1]) == nil {
			if err := b.Put(e[1], nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// insertOlder links r (older than the head) into the chain in time order:
// a backfill or an import.
func insertOlder(tx *bbolt.Tx, key []byte, r *record, cur []byte, curRec record) error {
	for {
		next := curRec.Prev
		var nextRec record
		if next != nil {
			var ok bool
			var err error
			if nextRec, ok, err = getRecord(tx, next); err != nil || !ok {
				return fmt.Errorf("client %s: piece %x: %w", r.Client, next, orMissing(err))
			}
		}
		if next == nil || newer(r.Time, key, nextRec.Time, next) {
			r.Prev = next
			curRec.Prev = key
			return tx.Bucket(bktPieces).Put(cur, curRec.encode())
		}
		cur, curRec = next, nextRec
	}
}

// walkChain calls fn for a client's pieces, newest first, until it says
// stop. A chain that does not go strictly back in time is corrupt (and
// could otherwise loop).
func walkChain(tx *bbolt.Tx, client string, fn func(key []byte, r record) (bool, error)) error {
	lb := tx.Bucket(bktLatest)
	if lb == nil {
		return nil
	}
	k, _, err := headOf(lb, client)
	if err != nil {
		return err
	}
	var last record
	var lastKey []byte
	for k != nil {
		r, ok, err := getRecord(tx, k)
		if err != nil || !ok {
			return fmt.Errorf("%w: client %s: chain piece %x: %w", ErrCorrupt, client, k, orMissing(err))
		}
		if lastKey != nil && !newer(last.Time, lastKey, r.Time, k) {
			return fmt.Errorf("%w: client %s: chain does not go back in time at piece %x", ErrCorrupt, client, k)
		}
		if r.Client != client {
			return fmt.Errorf("%w: client %s: chain reaches piece %x of client %s", ErrCorrupt, client, k, r.Client)
		}
		if stop, err := fn(k, r); err != nil || stop {
			return err
		}
		last, lastKey, k = r, k, r.Prev
	}
	return nil
}

// pruneClient deletes the pieces of one client whose keys are in gone,
// relinks the rest, and drops client-level index entries no remaining piece
// needs. It returns the content bytes freed.
func (c *Catalog) pruneClient(tx *bbolt.Tx, client string, gone map[string]bool) (int64, error) {
	type entry struct {
		key []byte
		r   record
	}
	var kept []entry
	old, still := map[string][2][]byte{}, map[string]bool{}
	var freed int64
	var dels []entry
	err := walkChain(tx, client, func(k []byte, r record) (bool, error) {
		for _, e := range clientEntries(r) {
			old[string(e[0])+"\x00"+string(e[1])] = e
		}
		if gone[string(k)] {
			dels = append(dels, entry{bytes.Clone(k), r})
			return false, nil
		}
		for _, e := range clientEntries(r) {
			still[string(e[0])+"\x00"+string(e[1])] = true
		}
		kept = append(kept, entry{bytes.Clone(k), r})
		return false, nil
	})
	if err != nil {
		return 0, err
	}
	for _, d := range dels {
		if err := tx.Bucket(bktPieces).Delete(d.key); err != nil {
			return freed, err
		}
		if err := tx.Bucket(bktIdxTime).Delete(timeEntry(d.r, d.key)); err != nil {
			return freed, err
		}
		n, err := c.store.Release(tx, d.r.Ref)
		if err != nil {
			return freed, fmt.Errorf("piece %x content %s: %w", d.key, d.r.Ref, err)
		}
		freed += n
	}
	for i, e := range kept {
		var want []byte
		if i+1 < len(kept) {
			want = kept[i+1].key
		}
		if !bytes.Equal(e.r.Prev, want) {
			e.r.Prev = want
			if err := tx.Bucket(bktPieces).Put(e.key, e.r.encode()); err != nil {
				return freed, err
			}
		}
	}
	lb := tx.Bucket(bktLatest)
	if len(kept) == 0 {
		err = lb.Delete([]byte(client))
	} else {
		err = lb.Put([]byte(client), headValue(kept[0].key, kept[0].r.Time))
	}
	if err != nil {
		return freed, err
	}
	for id, e := range old {
		if !still[id] {
			if err := tx.Bucket(e[0]).Delete(e[1]); err != nil {
				return freed, err
			}
		}
	}
	return freed, nil
}
