package catalog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/fleetvault/fleetvault/catalog/dedupe"
	"github.com/fleetvault/fleetvault/catalog/frame"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// Catalog file buckets. A client's pieces are stored as runs (record): a
// backup unchanged since the client's newest piece extends that piece's
// run. Each client's runs form a chain, newest first: idx/latest holds the
// newest piece, each run the key of the next older one. A backup of many
// clients so appends or grows one run and touches one small idx/latest
// entry per client, instead of rewriting index pages spread over the whole
// file (see docs/spec/catalog.md, "bbolt layout").
var (
	bktPieces   = []byte("pieces")     // run key (id of its oldest piece) -> record
	bktLatest   = []byte("idx/latest") // client -> id and time key of its newest piece
	bktIdxGroup = []byte("idx/group")  // group 0 client -> the tag attributes of its pieces in the group (groupindex.go)
	// The per-piece time index and the tag index of catalogs written
	// before runs: dropped (idx/tag folded into idx/group) when such a
	// catalog is opened for writing.
	bktIdxTime = []byte("idx/time")
	bktIdxTag  = []byte("idx/tag")
)

var catalogBuckets = [][]byte{bktPieces, bktLatest, bktIdxGroup, bktRestores, bktIdxRestoreDevice, bktIdxRestoreJob}

func initCatalog(tx *bbolt.Tx, store *dedupe.Store) error {
	for _, b := range catalogBuckets {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	for _, b := range [][]byte{bktTags, bktTagDict} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	if tx.Bucket(bktIdxTime) != nil {
		if err := tx.DeleteBucket(bktIdxTime); err != nil {
			return err
		}
	}
	if err := foldTagIndex(tx); err != nil {
		return err
	}
	if err := upgradeFrames(tx, frame.Codec{}, [][]byte{bktRestores}); err != nil {
		return err
	}
	return store.Init(tx)
}

// NewPiece is a data piece to record: its fields and its content.
type NewPiece struct {
	Client, Name, Type, Owner, Location, Group, Job string
	Time, Expiry                                    time.Time // zero Time: now; zero Expiry: none
	Tag                                             tagmatch.Tag
	Content                                         []byte
	Optional                                        map[string]string
}

// Piece is a recorded data piece. ID is unique in the installation.
type Piece struct {
	ID                                              string
	Client, Name, Type, Owner, Location, Group, Job string
	Time, Expiry                                    time.Time // UTC; zero Expiry: none
	Size                                            int64
	Tag                                             tagmatch.Tag
	Ref                                             dedupe.Ref
	Optional                                        map[string]string
}

// timeKey orders times as unsigned bytes, negative times included.
func timeKey(t time.Time) [8]byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(t.UnixNano())^(1<<63))
	return k
}

// pieceID formats a shard's piece key as an installation-wide id.
func (s *shard) pieceID(key []byte) string {
	id := fmt.Sprintf("%016x", key)
	if s.name != "" {
		return s.name + "/" + id
	}
	return id
}

// lookupID splits an id into its shard and piece key.
func (c *Catalog) lookupID(id string) (*shard, []byte, error) {
	name, hex := "", id
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		name, hex = id[:i], id[i+1:]
	}
	s, ok := c.byName[name]
	n, err := strconv.ParseUint(hex, 16, 64)
	if !ok || err != nil || len(hex) != 16 {
		return nil, nil, fmt.Errorf("catalog: piece %s: %w", id, ErrNotFound)
	}
	return s, binary.BigEndian.AppendUint64(nil, n), nil
}

func validatePiece(i int, p NewPiece) error {
	if p.Client == "" || p.Name == "" {
		return fmt.Errorf("catalog: piece %d: %w: client and name are required", i, ErrInvalid)
	}
	fields := []string{p.Client, p.Group}
	for _, a := range p.Tag {
		fields = append(fields, a.Key, a.Value)
	}
	for _, f := range fields {
		if strings.ContainsRune(f, 0) {
			return fmt.Errorf("catalog: piece %d (client %q): %w: a client, group or tag contains a NUL byte", i, p.Client, ErrInvalid)
		}
	}
	return nil
}

// Ingest records pieces and stores their content, deduplicated. The pieces
// of each catalog commit in one transaction (concurrent calls share one
// commit); when Ingest returns nil every piece is durable. The returned
// pieces are in the order given, with their ids.
func (c *Catalog) Ingest(ctx context.Context, pieces []NewPiece) ([]Piece, error) {
	if err := c.writable(); err != nil {
		return nil, err
	}
	now := c.opts.Now().UTC()
	for i := range pieces {
		if err := validatePiece(i, pieces[i]); err != nil {
			return nil, err
		}
	}
	routes, err := c.route(pieces)
	if err != nil {
		return nil, err
	}
	out := make([]Piece, len(pieces))
	for s, idx := range routes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		err := batch(s.db, "catalog: ingest into "+s.label(), func(tx *bbolt.Tx) error {
			return c.ingestTx(tx, s, pieces, idx, out, now)
		})
		if err != nil {
			return nil, fmt.Errorf("catalog: ingest into %s: %w", s.label(), err)
		}
	}
	return out, nil
}

// route maps each piece to its client's catalog (Device.Catalog), default
// when the client is unknown or names no catalog.
func (c *Catalog) route(pieces []NewPiece) (map[*shard][]int, error) {
	routes := map[*shard][]int{}
	if len(c.shards) == 1 {
		idx := make([]int, len(pieces))
		for i := range idx {
			idx[i] = i
		}
		routes[c.shards[0]] = idx
		return routes, nil
	}
	err := view(c.res, "catalog: route pieces", func(tx *bbolt.Tx) error {
		cache := map[string]*shard{}
		for i, p := range pieces {
			s, ok := cache[p.Client]
			if !ok {
				s = c.shards[0]
				var d Device
				if err := c.getDevice(tx, p.Client, &d); err == nil && d.Catalog != "" && c.byName[d.Catalog] != nil {
					s = c.byName[d.Catalog]
				}
				cache[p.Client] = s
			}
			routes[s] = append(routes[s], i)
		}
		return nil
	})
	return routes, err
}

func (c *Catalog) ingestTx(tx *bbolt.Tx, s *shard, pieces []NewPiece, idx []int, out []Piece, now time.Time) error {
	fillBuckets(tx)
	for _, i := range idx {
		np := pieces[i]
		ref, _, err := c.store.Put(tx, np.Content)
		if err != nil {
			return fmt.Errorf("piece %d (client %s): store content: %w", i, np.Client, err)
		}
		t := np.Time
		if t.IsZero() {
			t = now
		}
		p := Piece{Client: np.Client, Name: np.Name, Type: np.Type, Owner: np.Owner,
			Location: np.Location, Group: np.Group, Job: np.Job, Time: t.UTC(), Size: int64(len(np.Content)),
			Tag: np.Tag, Ref: ref, Optional: np.Optional}
		if !np.Expiry.IsZero() {
			p.Expiry = np.Expiry.UTC()
		}
		key, err := storePiece(tx, nil, toRecord(p))
		if err != nil {
			return fmt.Errorf("piece %d (client %s): %w", i, np.Client, err)
		}
		p.ID = s.pieceID(key)
		out[i] = p
	}
	return nil
}

// Piece returns the piece with this id, or ErrNotFound.
func (c *Catalog) Piece(id string) (Piece, error) {
	s, key, err := c.lookupID(id)
	if err != nil {
		return Piece{}, err
	}
	var p Piece
	err = view(s.db, "catalog: piece "+id, func(tx *bbolt.Tx) error {
		ru, i, ok, err := findRun(tx, key)
		if err != nil {
			return fmt.Errorf("catalog: piece %s: %w", id, err)
		}
		if !ok {
			return fmt.Errorf("catalog: piece %s: %w", id, ErrNotFound)
		}
		p = ru.r.piece(id, i)
		return nil
	})
	return p, err
}

// eachPiece calls fn for every piece of the shard in id order.
func (s *shard) eachPiece(tx *bbolt.Tx, fn func(Piece) error) error {
	return tx.Bucket(bktPieces).ForEach(func(k, v []byte) error {
		r, err := loadRun(tx, k, v)
		if err != nil {
			return fmt.Errorf("catalog: %s: piece run %s: %w", s.label(), s.pieceID(k), err)
		}
		for i := range r.count() {
			if err := fn(r.piece(s.pieceID(keyPlus(k, i)), i)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Content returns the content with this reference, hash-checked: a damaged
// object fails with an error wrapping dedupe.ErrCorrupt.
func (c *Catalog) Content(ref dedupe.Ref) ([]byte, error) {
	var data []byte
	for _, s := range c.shards {
		err := view(s.db, "catalog: content "+ref.String(), func(tx *bbolt.Tx) error {
			var err error
			data, err = c.store.Get(tx, ref)
			return err
		})
		if err == nil {
			return data, nil
		}
		if !errors.Is(err, dedupe.ErrNotFound) {
			return nil, fmt.Errorf("catalog: content %s in %s: %w", ref, s.label(), err)
		}
	}
	return nil, fmt.Errorf("catalog: content %s: %w", ref, ErrNotFound)
}
