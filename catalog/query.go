package catalog

import (
	"bytes"
	"container/heap"
	"fmt"
	"sort"
	"time"

	"go.etcd.io/bbolt"
)

// Query selects pieces. Empty fields do not restrict; From and To bound the
// backup time, inclusive. Results are newest first; Limit > 0 caps them.
type Query struct {
	Client, Group    string
	TagKey, TagValue string // both or neither
	From, To         time.Time
	Limit            int
}

func (q Query) match(p Piece) bool {
	if q.Client != "" && p.Client != q.Client || q.Group != "" && p.Group != q.Group {
		return false
	}
	if q.TagKey != "" {
		if v, ok := p.Tag.Get(q.TagKey); !ok || v != q.TagValue {
			return false
		}
	}
	return q.inTime(p.Time)
}

func (q Query) inTime(t time.Time) bool {
	return (q.From.IsZero() || !t.Before(q.From)) && (q.To.IsZero() || !t.After(q.To))
}

// hit is an index entry: the piece's time and key.
type hit struct {
	t   []byte // 8-byte time key
	key []byte // 8-byte piece key
}

// Pieces returns the pieces matching q, newest first, from every catalog.
// It walks the most selective index: client, tag (within a group when one is
// given), group, or time.
func (c *Catalog) Pieces(q Query) ([]Piece, error) {
	if q.TagValue != "" && q.TagKey == "" {
		return nil, fmt.Errorf("catalog: query: %w: a tag value needs a tag key", ErrInvalid)
	}
	var all []Piece
	for _, s := range c.shards {
		err := view(s.db, "catalog: query "+s.label(), func(tx *bbolt.Tx) error {
			ps, err := s.query(tx, q)
			all = append(all, ps...)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	if len(c.shards) > 1 {
		sortNewest(all)
		if q.Limit > 0 && len(all) > q.Limit {
			all = all[:q.Limit]
		}
	}
	return all, nil
}

func sortNewest(ps []Piece) {
	sort.SliceStable(ps, func(i, j int) bool {
		if !ps[i].Time.Equal(ps[j].Time) {
			return ps[i].Time.After(ps[j].Time)
		}
		return ps[i].ID > ps[j].ID
	})
}

func prefixOf(parts ...string) []byte {
	var b bytes.Buffer
	for _, p := range parts {
		b.WriteString(p)
		b.WriteByte(0)
	}
	return b.Bytes()
}

func (s *shard) query(tx *bbolt.Tx, q Query) ([]Piece, error) {
	var clients []string
	switch {
	case q.Client != "":
		clients = []string{q.Client}
	case q.TagKey != "":
		var err error
		if clients, err = tagClients(tx, q.TagKey, q.TagValue, q.Group); err != nil {
			return nil, fmt.Errorf("catalog: %s: %w", s.label(), err)
		}
	case q.Group != "":
		clients = clientsUnder(tx, bktIdxGroup, prefixOf(q.Group), false)
	default:
		return s.byTime(tx, q)
	}
	return s.mergeChains(tx, clients, q)
}

// chainIter walks one client's chain, piece by piece; its run is read
// only when needed.
type chainIter struct {
	client string
	key    []byte // the current piece's id
	t      int64  // and time
	ru     *run   // the run holding it, once read
	i      int    // its index in ru
}

type chainHeap []*chainIter

func (h chainHeap) Len() int           { return len(h) }
func (h chainHeap) Less(i, j int) bool { return newer(h[i].t, h[i].key, h[j].t, h[j].key) }
func (h chainHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *chainHeap) Push(x any)        { *h = append(*h, x.(*chainIter)) }
func (h *chainHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// load reads the run of the iterator's first piece (the client's newest).
func (it *chainIter) load(tx *bbolt.Tx) error {
	ru, i, ok, err := findRun(tx, it.key)
	if err != nil || !ok || ru.r.Client != it.client || ru.r.Times[i] != it.t {
		return fmt.Errorf("%w: client %s: newest piece %x: %w", ErrCorrupt, it.client, it.key, orMissing(err))
	}
	it.ru, it.i = &ru, i
	return nil
}

// next moves to the next older piece; false at the chain's end.
func (it *chainIter) next(tx *bbolt.Tx) (bool, error) {
	if it.i > 0 {
		it.i--
		it.key, it.t = keyPlus(it.ru.key, it.i), it.ru.r.Times[it.i]
		return true, nil
	}
	prev := it.ru.r.Prev
	if prev == nil {
		return false, nil
	}
	r, ok, err := getRun(tx, prev)
	if err != nil || !ok {
		return false, fmt.Errorf("client %s: run %x: %w", it.client, prev, orMissing(err))
	}
	key, t := keyPlus(prev, r.count()-1), r.newest()
	if !newer(it.t, it.key, t, key) || r.Client != it.client {
		return false, fmt.Errorf("%w: client %s: chain broken at run %x", ErrCorrupt, it.client, prev)
	}
	it.ru, it.i, it.key, it.t = &run{bytes.Clone(prev), r}, r.count()-1, key, t
	return true, nil
}

// mergeChains merges the clients' chains newest first. The heads' times
// come from idx/latest, so a query with a limit reads about limit pieces'
// runs (plus one per chain it advances), however many clients and pieces.
func (s *shard) mergeChains(tx *bbolt.Tx, clients []string, q Query) ([]Piece, error) {
	h := make(chainHeap, 0, len(clients))
	lb := tx.Bucket(bktLatest)
	for _, client := range clients {
		k, t, err := headOf(lb, client)
		if err != nil {
			return nil, fmt.Errorf("catalog: %s: %w", s.label(), err)
		}
		if k != nil {
			h = append(h, &chainIter{client: client, key: bytes.Clone(k), t: t})
		}
	}
	heap.Init(&h)
	var out []Piece
	for h.Len() > 0 && (q.Limit <= 0 || len(out) < q.Limit) {
		it := h[0]
		if !q.From.IsZero() && time.Unix(0, it.t).Before(q.From) {
			heap.Pop(&h) // the rest of this chain is older still
			continue
		}
		if it.ru == nil {
			if err := it.load(tx); err != nil {
				return nil, fmt.Errorf("catalog: %s: %w", s.label(), err)
			}
		}
		if p := it.ru.r.piece(s.pieceID(it.key), it.i); q.match(p) {
			out = append(out, p)
		}
		more, err := it.next(tx)
		if err != nil {
			return nil, fmt.Errorf("catalog: %s: %w", s.label(), err)
		}
		if !more {
			heap.Pop(&h)
			continue
		}
		heap.Fix(&h, 0)
	}
	return out, nil
}

// clientsUnder lists the clients of client-level index entries under
// prefix; with skipGroup the entries hold "group 0 client" after it.
func clientsUnder(tx *bbolt.Tx, bkt, prefix []byte, skipGroup bool) []string {
	b := tx.Bucket(bkt)
	if b == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	cur := b.Cursor()
	for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
		rest := k[len(prefix):]
		if skipGroup {
			i := bytes.IndexByte(rest, 0)
			if i < 0 {
				continue
			}
			rest = rest[i+1:]
		}
		if c := string(rest); !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// byTime merges every client's chain, newest first.
func (s *shard) byTime(tx *bbolt.Tx, q Query) ([]Piece, error) {
	var clients []string
	if lb := tx.Bucket(bktLatest); lb != nil {
		_ = lb.ForEach(func(k, _ []byte) error {
			clients = append(clients, string(k))
			return nil
		})
	}
	return s.mergeChains(tx, clients, q)
}

func orMissing(err error) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: the piece is missing", ErrCorrupt)
}

// reverseRange walks entries prefix+time+key with time in [from, to]
// (zero: unbounded), newest first, until fn says stop.
func reverseRange(cur *bbolt.Cursor, prefix []byte, from, to time.Time, fn func(hit) (bool, error)) error {
	upper := append(append([]byte(nil), prefix...), bytes.Repeat([]byte{0xff}, 16)...)
	if !to.IsZero() {
		tk := timeKey(to)
		upper = append(append(append([]byte(nil), prefix...), tk[:]...), bytes.Repeat([]byte{0xff}, 8)...)
	}
	var lower []byte
	if !from.IsZero() {
		tk := timeKey(from)
		lower = append(append([]byte(nil), prefix...), tk[:]...)
	}
	k, _ := cur.Seek(upper)
	if k == nil || bytes.Compare(k, upper) > 0 {
		k, _ = cur.Prev()
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Prev() {
		if len(k) != len(prefix)+16 {
			continue // a longer key sharing the prefix, e.g. client "a" vs "a\x00..." cannot occur, but be safe
		}
		if lower != nil && bytes.Compare(k, lower) < 0 {
			return nil
		}
		if stop, err := fn(hit{t: k[len(prefix) : len(prefix)+8], key: k[len(prefix)+8:]}); err != nil || stop {
			return err
		}
	}
	return nil
}

// Latest returns the newest piece of a client, or ErrNotFound.
func (c *Catalog) Latest(client string) (Piece, error) {
	ps, err := c.Pieces(Query{Client: client, Limit: 1})
	if err != nil {
		return Piece{}, err
	}
	if len(ps) == 0 {
		return Piece{}, fmt.Errorf("catalog: latest piece of client %s: %w", client, ErrNotFound)
	}
	return ps[0], nil
}

// Candidates returns the newest piece of each client within a backup group,
// ordered by client: what a group restore matches device tags against.
func (c *Catalog) Candidates(group string) ([]Piece, error) {
	return c.CandidatesAsOf(group, time.Time{})
}

// CandidatesAsOf is Candidates as the backup group stood at asOf: the newest
// piece of each client backed up at or before it (the zero time: no bound).
func (c *Catalog) CandidatesAsOf(group string, asOf time.Time) ([]Piece, error) {
	newest := map[string]Piece{}
	for _, s := range c.shards {
		err := view(s.db, "catalog: candidates in "+s.label(), func(tx *bbolt.Tx) error {
			return s.candidates(tx, group, asOf, func(p Piece) {
				if old, ok := newest[p.Client]; !ok || p.Time.After(old.Time) {
					newest[p.Client] = p
				}
			})
		})
		if err != nil {
			return nil, err
		}
	}
	out := make([]Piece, 0, len(newest))
	for _, p := range newest {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Client < out[j].Client })
	return out, nil
}

// candidates walks, per client of the group, its chain to its newest piece
// in the group (normally the head).
func (s *shard) candidates(tx *bbolt.Tx, group string, asOf time.Time, fn func(Piece)) error {
	for _, client := range clientsUnder(tx, bktIdxGroup, prefixOf(group), false) {
		err := walkChain(tx, client, func(k []byte, r *record) (bool, error) {
			if r.Group != group {
				return false, nil
			}
			for i := r.count() - 1; i >= 0; i-- {
				if asOf.IsZero() || r.Times[i] <= asOf.UnixNano() {
					fn(r.piece(s.pieceID(keyPlus(k, i)), i))
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("catalog: %s: %w", s.label(), err)
		}
	}
	return nil
}
