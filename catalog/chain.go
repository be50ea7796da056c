package catalog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// fillBuckets packs the catalog's pages: pieces are appended in key order
// (leaving room for runs that grow in place), and idx/group entries are
// written once per client and group, and seldom change. idx/latest values
// grow with their run tails: its pages split half full, as by default.
func fillBuckets(tx *bbolt.Tx) {
	tx.Bucket(bktPieces).FillPercent = 0.95
	tx.Bucket(bktIdxGroup).FillPercent = 1.0
}

// newer orders pieces by time, then id.
func newer(at int64, ak []byte, bt int64, bk []byte) bool {
	return at > bt || at == bt && bytes.Compare(ak, bk) > 0
}

// headValue is an idx/latest value: the newest piece's id and time, so a
// merge of many clients' chains starts without reading their records.
func headValue(key []byte, t int64) []byte {
	tk := timeKey(time.Unix(0, t))
	return append(append(make([]byte, 0, 16), key...), tk[:]...)
}

// headOf returns a client's newest piece id and time, or a nil id.
func headOf(lb *bbolt.Bucket, client string) ([]byte, int64, error) {
	v := lb.Get([]byte(client))
	if v == nil {
		return nil, 0, nil
	}
	if len(v) < 16 || len(v) > 16 && len(v) < 16+8+3 {
		return nil, 0, fmt.Errorf("%w: client %s: newest-piece entry is %d bytes, want 16 or a run tail after them", ErrCorrupt, client, len(v))
	}
	return v[:8], int64(binary.BigEndian.Uint64(v[8:16]) ^ (1 << 63)), nil
}

// A run tail: the newest pieces of a client's newest run, kept after the
// 16 bytes of its idx/latest entry instead of in the run's record: the
// run's key, the count of pieces, their time gaps (the first from the
// record's newest piece) and jobs, encoded as in a record. The entry is
// rewritten at every backup anyway, so an unchanged backup rewrites no
// record: its page stays clean. The tail moves into the record (a flush)
// when it outgrows maxTailBytes, when a new run starts, and before a
// backfill or a prune changes the chain.
const maxTailBytes = 96

// tailValue is the idx/latest value of head (id, t) with the tail of run
// ru: its pieces past the record's.
func tailValue(id []byte, t int64, ru run) []byte {
	v := headValue(id, t)
	stored := ru.r.count() - ru.r.tail
	if ru.r.tail == 0 {
		return v
	}
	v = append(v, ru.key...)
	v = binary.AppendUvarint(v, uint64(ru.r.tail))
	v = appendGaps(v, ru.r.Times[stored-1:])
	return appendJobs(v, ru.r.Jobs[stored:])
}

// mergeTail adds to r, the record stored under key, the pieces its
// client's idx/latest entry holds for it.
func mergeTail(tx *bbolt.Tx, key []byte, r *record) error {
	v := tx.Bucket(bktLatest).Get([]byte(r.Client))
	if len(v) <= 16 || len(v) < 24 || !bytes.Equal(v[16:24], key) {
		return nil
	}
	d := &recordReader{b: v[24:]}
	n := d.uvarint("tail piece count")
	if d.err != nil || n == 0 || n > maxRunPieces-uint64(r.count()) {
		return fmt.Errorf("%w: client %s: newest-piece entry: run tail of %d pieces", ErrCorrupt, r.Client, n)
	}
	times := d.gaps(append(make([]int64, 0, r.count()+int(n)), r.Times...), int(n))
	jobs := d.jobs(append(make([]string, 0, r.count()+int(n)), r.Jobs...), int(n))
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return fmt.Errorf("client %s: newest-piece entry: run tail: %w", r.Client, d.err)
	}
	if want := keyPlus(key, len(times)-1); !bytes.Equal(v[:8], want) || int64(binary.BigEndian.Uint64(v[8:16])^(1<<63)) != times[len(times)-1] {
		return fmt.Errorf("%w: client %s: newest-piece entry names piece %x, its run tail ends at %x", ErrCorrupt, r.Client, v[:8], want)
	}
	r.Times, r.Jobs, r.tail = times, jobs, int(n)
	return nil
}

// loadRun decodes the record v stored under key, with its run tail.
func loadRun(tx *bbolt.Tx, key, v []byte) (record, error) {
	r, err := decodeRecord(v)
	if err == nil {
		err = resolveTag(tx, &r)
	}
	if err == nil {
		err = mergeTail(tx, key, &r)
	}
	return r, err
}

// flushRun writes ru's record with its tail, and ru's last piece as its
// client's newest without one: ru must be the client's newest run.
func flushRun(tx *bbolt.Tx, ru run) error {
	if ru.r.tail == 0 {
		return nil
	}
	ru.r.tail = 0
	if err := tx.Bucket(bktPieces).Put(ru.key, ru.r.encode()); err != nil {
		return err
	}
	return tx.Bucket(bktLatest).Put([]byte(ru.r.Client), headValue(keyPlus(ru.key, ru.r.count()-1), ru.r.newest()))
}

// flushHead flushes the run tail of client's newest run, if any.
func flushHead(tx *bbolt.Tx, client string) error {
	head, _, err := headOf(tx.Bucket(bktLatest), client)
	if err != nil || head == nil {
		return err
	}
	ru, _, ok, err := findRun(tx, head)
	if err != nil || !ok {
		return fmt.Errorf("client %s: newest piece %x: %w", client, head, orMissing(err))
	}
	return flushRun(tx, ru)
}

// keyPlus returns the id i after key: a run's i-th piece.
func keyPlus(key []byte, i int) []byte {
	return binary.BigEndian.AppendUint64(nil, binary.BigEndian.Uint64(key)+uint64(i))
}

// keyDiff returns id - key for ids in key's run.
func keyDiff(id, key []byte) uint64 {
	return binary.BigEndian.Uint64(id) - binary.BigEndian.Uint64(key)
}

// run is a record with its key, as found in the pieces bucket.
type run struct {
	key []byte
	r   record
}

// findRun returns the run holding piece id and the piece's index in it;
// found is false when no run holds it.
func findRun(tx *bbolt.Tx, id []byte) (run, int, bool, error) {
	b := tx.Bucket(bktPieces)
	if b == nil || len(id) != 8 {
		return run{}, 0, false, nil
	}
	cur := b.Cursor()
	k, v := cur.Seek(id)
	if k == nil {
		k, v = cur.Last()
	} else if !bytes.Equal(k, id) {
		k, v = cur.Prev()
	}
	if k == nil || len(k) != 8 || bytes.Compare(k, id) > 0 {
		return run{}, 0, false, nil
	}
	r, err := loadRun(tx, k, v)
	if err != nil {
		return run{}, 0, false, fmt.Errorf("piece run %x: %w", k, err)
	}
	i := keyDiff(id, k)
	if i >= uint64(r.count()) {
		return run{}, 0, false, nil
	}
	return run{bytes.Clone(k), r}, int(i), true, nil
}

// getRun reads the run stored under key, reached from a newer run of its
// chain: so not its client's newest run, and without a run tail.
func getRun(tx *bbolt.Tx, key []byte) (record, bool, error) {
	v := tx.Bucket(bktPieces).Get(key)
	if v == nil {
		return record{}, false, nil
	}
	r, err := decodeRecord(v)
	if err == nil {
		err = resolveTag(tx, &r)
	}
	return r, true, err
}

// nextFree reports whether id, the piece after run key's last, is free:
// no other run starts at or before it.
func nextFree(tx *bbolt.Tx, key []byte, id []byte) bool {
	if keyDiff(id, key) >= maxRunPieces {
		return false
	}
	cur := tx.Bucket(bktPieces).Cursor()
	k, _ := cur.Seek(key)
	if k == nil || !bytes.Equal(k, key) {
		return false
	}
	k, _ = cur.Next()
	return k == nil || bytes.Compare(k, id) > 0
}

// newRunKey allocates the key of a new run: a fresh sequence number above
// every stored id, shifted by runBits.
func newRunKey(pb *bbolt.Bucket) ([]byte, error) {
	seq, err := pb.NextSequence()
	if err != nil {
		return nil, err
	}
	if seq >= 1<<(64-runBits) {
		return nil, fmt.Errorf("%w: piece sequence %d exhausted", ErrCorrupt, seq)
	}
	return binary.BigEndian.AppendUint64(nil, seq<<runBits), nil
}

// storePiece records p (a run of one) as its client's piece with id want,
// or a new id when want is nil, and returns the id. A piece newer than
// its client's newest that has the newest's fields and content extends
// that run; any other starts a run, linked into the client's chain in time
// order. Index entries not there yet are added (an existing entry is not
// rewritten, so its page stays clean).
func storePiece(tx *bbolt.Tx, want []byte, p record) ([]byte, error) {
	lb := tx.Bucket(bktLatest)
	head, headT, err := headOf(lb, p.Client)
	if err != nil {
		return nil, err
	}
	head = bytes.Clone(head)
	t := p.Times[0]
	if want != nil {
		if _, _, found, err := findRun(tx, want); err != nil || found {
			return nil, orExists(err, want)
		}
	}
	var hr run
	if head != nil {
		var ok bool
		var i int
		if hr, i, ok, err = findRun(tx, head); err != nil || !ok || i != hr.r.count()-1 {
			return nil, fmt.Errorf("client %s: newest piece %x: %w", p.Client, head, orMissing(err))
		}
	}
	if head != nil && !(t > headT || t == headT && (want == nil || bytes.Compare(want, head) > 0)) {
		if err := flushRun(tx, hr); err != nil {
			return nil, err
		}
		return insertOlder(tx, want, p, hr)
	}
	// An import (want set) rebuilds the runs of the ids it is given; runs
	// it makes are closed to ingest, since the export's source may have
	// used (and pruned) the ids that would follow.
	if head != nil && (!hr.r.Closed || want != nil) && hr.r.sameRun(p) {
		if id := keyPlus(hr.key, hr.r.count()); (want == nil || bytes.Equal(want, id)) && nextFree(tx, hr.key, id) {
			return id, extendRun(tx, hr, id, t, p.Jobs[0])
		}
	}
	if err := flushRun(tx, hr); err != nil {
		return nil, err
	}
	key := want
	if key == nil {
		if key, err = newRunKey(tx.Bucket(bktPieces)); err != nil {
			return nil, err
		}
	}
	p.Prev, p.Closed = hr.key, want != nil
	if err := lb.Put([]byte(p.Client), headValue(key, t)); err != nil {
		return nil, err
	}
	return key, putNewRun(tx, key, &p)
}

// extendRun adds piece id (time t, job) to ru, its client's newest run: in
// the run tail of its idx/latest entry, flushed into the record when the
// tail grows too long. A record that grows past maxRunBytes is closed.
func extendRun(tx *bbolt.Tx, ru run, id []byte, t int64, job string) error {
	ru.r.Times = append(ru.r.Times, t)
	ru.r.Jobs = append(ru.r.Jobs, job)
	ru.r.tail++
	v := tailValue(id, t, ru)
	if len(v) <= 16+maxTailBytes {
		return tx.Bucket(bktLatest).Put([]byte(ru.r.Client), v)
	}
	ru.r.tail = 0
	enc := ru.r.encode()
	if len(enc) > maxRunBytes {
		ru.r.Closed = true
		enc = ru.r.encode()
	}
	if err := tx.Bucket(bktPieces).Put(ru.key, enc); err != nil {
		return err
	}
	return tx.Bucket(bktLatest).Put([]byte(ru.r.Client), headValue(id, t))
}

// putNewRun writes a new run and what its idx/group entry lacks.
func putNewRun(tx *bbolt.Tx, key []byte, r *record) error {
	if err := internTag(tx, r); err != nil {
		return err
	}
	if err := tx.Bucket(bktPieces).Put(key, r.encode()); err != nil {
		return err
	}
	return indexRun(tx, r)
}

func orExists(err error, id []byte) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("piece %x: %w", id, ErrExists)
}

// insertOlder links p (older than the client's newest piece) into the
// chain in time order, as a run of its own: a backfill or an import. A run
// whose time span p falls into is split around it.
func insertOlder(tx *bbolt.Tx, want []byte, p record, cur run) ([]byte, error) {
	pb := tx.Bucket(bktPieces)
	key := want
	if key == nil {
		var err error
		if key, err = newRunKey(pb); err != nil {
			return nil, err
		}
	}
	t := p.Times[0]
	var newerRun *run // the run linking to cur; nil when cur is the head
	for {
		i := cur.r.count() // cur's pieces older than p: 0 to i-1
		for i > 0 && newer(cur.r.Times[i-1], keyPlus(cur.key, i-1), t, key) {
			i--
		}
		if i == cur.r.count() {
			return nil, fmt.Errorf("%w: client %s: piece %x is newer than the chain's run %x", ErrCorrupt, p.Client, key, cur.key)
		}
		if i > 0 { // split cur: p goes between its pieces i-1 and i
			upperKey := keyPlus(cur.key, i)
			upper, lower := cur.r.part(i, cur.r.count()), cur.r.part(0, i)
			upper.Prev, lower.Closed, p.Prev = key, true, cur.key
			if err := pb.Put(upperKey, upper.encode()); err != nil {
				return nil, err
			}
			if err := pb.Put(cur.key, lower.encode()); err != nil {
				return nil, err
			}
			if newerRun != nil { // the head's newest piece keeps its id: idx/latest stays
				newerRun.r.Prev = upperKey
				if err := pb.Put(newerRun.key, newerRun.r.encode()); err != nil {
					return nil, err
				}
			}
			return key, putNewRun(tx, key, &p)
		}
		next := cur.r.Prev
		var nr record
		if next != nil {
			var ok bool
			var err error
			if nr, ok, err = getRun(tx, next); err != nil || !ok {
				return nil, fmt.Errorf("client %s: run %x: %w", p.Client, next, orMissing(err))
			}
		}
		if next == nil || newer(t, key, nr.newest(), keyPlus(next, nr.count()-1)) {
			p.Prev = next
			cur.r.Prev = key
			if err := pb.Put(cur.key, cur.r.encode()); err != nil {
				return nil, err
			}
			return key, putNewRun(tx, key, &p)
		}
		newerRun = &run{cur.key, cur.r}
		cur = run{bytes.Clone(next), nr}
	}
}

// walkChain calls fn for a client's runs, newest first, until it says
// stop. A chain that does not go strictly back in time is corrupt (and
// could otherwise loop).
func walkChain(tx *bbolt.Tx, client string, fn func(key []byte, r *record) (bool, error)) error {
	lb := tx.Bucket(bktLatest)
	if lb == nil {
		return nil
	}
	head, _, err := headOf(lb, client)
	if err != nil || head == nil {
		return err
	}
	first, i, ok, err := findRun(tx, head)
	if err != nil || !ok || i != first.r.count()-1 {
		return fmt.Errorf("%w: client %s: newest piece %x is not the newest of a run: %w", ErrCorrupt, client, head, orMissing(err))
	}
	k, r := first.key, first.r
	var olderThan []byte // the oldest piece id of the run walked last
	var olderT int64
	for {
		if olderThan != nil && !newer(olderT, olderThan, r.newest(), keyPlus(k, r.count()-1)) {
			return fmt.Errorf("%w: client %s: chain does not go back in time at run %x", ErrCorrupt, client, k)
		}
		if r.Client != client {
			return fmt.Errorf("%w: client %s: chain reaches run %x of client %s", ErrCorrupt, client, k, r.Client)
		}
		if stop, err := fn(k, &r); err != nil || stop {
			return err
		}
		olderThan, olderT = k, r.Times[0]
		if r.Prev == nil {
			return nil
		}
		next := r.Prev
		var ok bool
		if r, ok, err = getRun(tx, next); err != nil || !ok {
			return fmt.Errorf("%w: client %s: chain run %x: %w", ErrCorrupt, client, next, orMissing(err))
		}
		k = next
	}
}

// pruneClient deletes the pieces of one client whose ids are in gone,
// splitting runs that lose a middle piece, relinks the rest, and brings
// its idx/group entries to what the remaining runs need. It returns the
// content bytes freed.
func (c *Catalog) pruneClient(tx *bbolt.Tx, client string, gone map[string]bool) (int64, error) {
	if err := flushHead(tx, client); err != nil {
		return 0, err
	}
	var all, kept []run // newest first
	err := walkChain(tx, client, func(k []byte, r *record) (bool, error) {
		all = append(all, run{bytes.Clone(k), *r})
		return false, nil
	})
	if err != nil {
		return 0, err
	}
	pb := tx.Bucket(bktPieces)
	old, still := groupNeeds{}, groupNeeds{}
	var freed int64
	for _, ru := range all {
		parts, released, err := c.pruneRun(tx, ru, gone)
		freed += released
		if err != nil {
			return freed, err
		}
		old.add(&ru.r)
		for _, p := range parts {
			still.add(&p.r)
		}
		kept = append(kept, parts...)
	}
	for i := range kept {
		var want []byte
		if i+1 < len(kept) {
			want = kept[i+1].key
		}
		if !bytes.Equal(kept[i].r.Prev, want) {
			kept[i].r.Prev = want
			if err := pb.Put(kept[i].key, kept[i].r.encode()); err != nil {
				return freed, err
			}
		}
	}
	lb := tx.Bucket(bktLatest)
	if len(kept) == 0 {
		err = lb.Delete([]byte(client))
	} else {
		h := kept[0]
		err = lb.Put([]byte(client), headValue(keyPlus(h.key, h.r.count()-1), h.r.newest()))
	}
	if err != nil {
		return freed, err
	}
	return freed, reindex(tx, old, still)
}

// pruneRun removes the pieces of ru whose ids are in gone and releases
// their content. It returns what is left of the run, newest first: ru
// itself, nothing, or the parts between removed pieces, each keyed by its
// oldest piece's id (so every kept piece keeps its id). The parts are
// written; pruneClient links them.
func (c *Catalog) pruneRun(tx *bbolt.Tx, ru run, gone map[string]bool) ([]run, int64, error) {
	n := ru.r.count()
	keep := make([]bool, n)
	cut := false
	for i := range keep {
		keep[i] = !gone[string(keyPlus(ru.key, i))]
		cut = cut || !keep[i]
	}
	if !cut {
		return []run{ru}, 0, nil
	}
	pb := tx.Bucket(bktPieces)
	var freed int64
	for i := range keep {
		if keep[i] {
			continue
		}
		f, err := c.store.Release(tx, ru.r.Ref)
		if err != nil {
			return nil, freed, fmt.Errorf("piece %x content %s: %w", keyPlus(ru.key, i), ru.r.Ref, err)
		}
		freed += f
	}
	if err := pb.Delete(ru.key); err != nil {
		return nil, freed, err
	}
	var parts []run
	for lo := 0; lo < n; {
		if !keep[lo] {
			lo++
			continue
		}
		hi := lo
		for hi < n && keep[hi] {
			hi++
		}
		p := run{keyPlus(ru.key, lo), ru.r.part(lo, hi)}
		p.r.Closed = ru.r.Closed || hi < n // only a run's last part may grow, into ids no piece had
		if err := pb.Put(p.key, p.r.encode()); err != nil {
			return nil, freed, err
		}
		parts = append([]run{p}, parts...)
		lo = hi
	}
	return parts, freed, nil
}
