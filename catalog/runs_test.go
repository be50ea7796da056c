package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/fleetvault/fleetvault/tagmatch"
)

// steadyPieces: client's nightly backups of unchanged content, except
// those at the nights in changed, which differ from the night before.
func steadyPieces(client string, nights int, changed ...int) []NewPiece {
	var ps []NewPiece
	version := 0
	for n := range nights {
		for _, c := range changed {
			if c == n {
				version++
			}
		}
		ps = append(ps, NewPiece{Client: client, Name: "settings", Type: "settings/cbor", Group: "Daily Device Backup",
			Job: fmt.Sprintf("job-%d", n/3), Time: t0.Add(time.Duration(n) * 24 * time.Hour),
			Tag: tagmatch.Tag{{Key: "model", Value: "S1"}}, Content: []byte(fmt.Sprintf(`{"v":%d}`, version))})
	}
	return ps
}

// runsOf counts the records of a catalog's default file.
func runsOf(t *testing.T, c *Catalog) int {
	t.Helper()
	n := 0
	must(t, view(c.shards[0].db, "count", func(tx *bbolt.Tx) error {
		n = tx.Bucket(bktPieces).Stats().KeyN
		return nil
	}))
	return n
}

// wantPieces checks that the catalog holds exactly the pieces of ps (newest
// first, as listed) and that each resolves by id with its own time and job.
func wantPieces(t *testing.T, c *Catalog, client string, want []Piece) {
	t.Helper()
	got, err := c.Pieces(Query{Client: client})
	must(t, err)
	if len(got) != len(want) {
		t.Fatalf("%s has %d pieces, want %d", client, len(got), len(want))
	}
	for i := range want {
		w := want[len(want)-1-i]
		if got[i].ID != w.ID || !got[i].Time.Equal(w.Time) || got[i].Job != w.Job || got[i].Ref != w.Ref {
			t.Fatalf("piece %d is %s at %s job %s, want %s at %s job %s", i, got[i].ID, got[i].Time, got[i].Job, w.ID, w.Time, w.Job)
		}
		p, err := c.Piece(w.ID)
		if err != nil || !p.Time.Equal(w.Time) || p.Job != w.Job {
			t.Fatalf("Piece(%s) = %s %s, %v; want %s %s", w.ID, p.Time, p.Job, err, w.Time, w.Job)
		}
	}
	if ps := verifyOpen(t, c); len(ps) > 0 {
		t.Fatalf("check reports %v", ps)
	}
}

func TestRunsOfUnchangedBackups(t *testing.T) {
	tests := []struct {
		name    string
		nights  int
		changed []int
		batch   int // pieces per Ingest
		runs    int
	}{
		{"one run", 30, nil, 1, 1},
		{"one run, one batch", 30, nil, 30, 1},
		{"changes start runs", 30, []int{10, 20}, 7, 3},
		{"change back is a new run", 12, []int{4, 8, 9}, 1, 4},
		{"long tail flushes", 200, nil, 10, 1},
		{"full record closes", 1000, nil, 100, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := mustCreate(t, Options{})
			ps := steadyPieces("dev1", tt.nights, tt.changed...)
			var out []Piece
			for i := 0; i < len(ps); i += tt.batch {
				out = append(out, mustIngest(t, c, ps[i:min(i+tt.batch, len(ps))])...)
			}
			if n := runsOf(t, c); n != tt.runs {
				t.Fatalf("%d runs stored, want %d", n, tt.runs)
			}
			seen := map[string]bool{}
			for _, p := range out {
				if seen[p.ID] {
					t.Fatalf("id %s given twice", p.ID)
				}
				seen[p.ID] = true
			}
			wantPieces(t, c, "dev1", out)
			if l, err := c.LatestAsOf("dev1", "", out[5].Time.Add(time.Hour)); err != nil || l.ID != out[5].ID {
				t.Fatalf("LatestAsOf night 5 = %s, %v; want %s", l.ID, err, out[5].ID)
			}
			if cs, err := c.CandidatesAsOf("Daily Device Backup", out[3].Time); err != nil || len(cs) != 1 || cs[0].ID != out[3].ID {
				t.Fatalf("CandidatesAsOf night 3 = %v, %v; want %s", cs, err, out[3].ID)
			}
			all, err := c.Pieces(Query{From: out[2].Time, To: out[4].Time})
			if err != nil || len(all) != 3 || all[0].ID != out[4].ID || all[2].ID != out[2].ID {
				t.Fatalf("Pieces nights 2-4 = %v, %v", all, err)
			}
			if tag, err := c.Pieces(Query{Group: "Daily Device Backup", TagKey: "model", TagValue: "S1", Limit: 2}); err != nil || len(tag) != 2 || tag[0].ID != out[len(out)-1].ID {
				t.Fatalf("Pieces by tag = %v, %v", tag, err)
			}
		})
	}
}

// TestRunsPruneSplits prunes pieces out of a run: the rest keep their ids,
// content references are released one per piece, and later backups do not
// reuse a removed id.
func TestRunsPruneSplits(t *testing.T) {
	tests := []struct {
		name string
		keep KeepRule
		left []int // nights left
	}{
		{"newest", KeepRule{Client: "dev1", Last: 3}, []int{7, 8, 9}},
		{"last 1 weekly 2", KeepRule{Client: "dev1", Last: 1, Weekly: 2}, []int{9, 7}}, // ISO weeks: night 7 is Sunday 8 March
		{"every other night (by hand: no keep rule does it)", KeepRule{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := mustCreate(t, Options{})
			out := mustIngest(t, c, steadyPieces("dev1", 10))
			var want []Piece
			if tt.keep.Client != "" {
				rep, err := c.Prune(context.Background(), []KeepRule{tt.keep}, false)
				must(t, err)
				for _, n := range tt.left {
					want = append([]Piece{out[n]}, want...)
				}
				if len(rep.Removed) != 10-len(tt.left) {
					t.Fatalf("removed %d, want %d", len(rep.Removed), 10-len(tt.left))
				}
			} else {
				gone := map[string]bool{}
				for n := 1; n < 10; n += 2 {
					_, key, err := c.lookupID(out[n].ID)
					must(t, err)
					gone[string(key)] = true
				}
				for n := 0; n < 10; n += 2 {
					want = append(want, out[n])
				}
				must(t, update(c.shards[0].db, "prune", func(tx *bbolt.Tx) error {
					_, err := c.pruneClient(tx, "dev1", gone)
					return err
				}))
			}
			sortOldest(want)
			wantPieces(t, c, "dev1", want)
			for _, p := range out {
				if !containsID(want, p.ID) {
					if _, err := c.Piece(p.ID); err == nil {
						t.Fatalf("removed piece %s still resolves", p.ID)
					}
				}
			}
			next := steadyPieces("dev1", 12)[10:]
			more := mustIngest(t, c, next)
			for _, p := range more {
				for _, o := range out {
					if p.ID == o.ID {
						t.Fatalf("new piece reuses id %s", p.ID)
					}
				}
			}
			wantPieces(t, c, "dev1", append(want, more...))
			st, err := c.shardStats()
			must(t, err)
			if st != int64(len(want)+len(more)) {
				t.Fatalf("content references %d, want %d", st, len(want)+len(more))
			}
		})
	}
}

func sortOldest(ps []Piece) {
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && ps[j].Time.Before(ps[j-1].Time); j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
}

func containsID(ps []Piece, id string) bool {
	for _, p := range ps {
		if p.ID == id {
			return true
		}
	}
	return false
}

// shardStats returns the default catalog's content references.
func (c *Catalog) shardStats() (int64, error) {
	var n int64
	err := view(c.shards[0].db, "stats", func(tx *bbolt.Tx) error {
		st, err := c.store.Stats(tx)
		n = st.References
		return err
	})
	return n, err
}

// TestRunsBackfillSplits ingests a piece older than the newest, inside a
// run's time span: the run splits around it, every id still resolves.
func TestRunsBackfillSplits(t *testing.T) {
	c, _ := mustCreate(t, Options{})
	out := mustIngest(t, c, steadyPieces("dev1", 10))
	late := steadyPieces("dev1", 10)[4]
	late.Time = late.Time.Add(time.Hour)
	late.Content = []byte(`{"late":1}`)
	back := mustIngest(t, c, []NewPiece{late})
	if n := runsOf(t, c); n != 3 {
		t.Fatalf("%d runs after the backfill, want 3", n)
	}
	want := append(append(append([]Piece(nil), out[:5]...), back[0]), out[5:]...)
	wantPieces(t, c, "dev1", want)
	more := mustIngest(t, c, steadyPieces("dev1", 11)[10:])
	wantPieces(t, c, "dev1", append(want, more...))
}

// TestRunsExportRows exports a catalog of runs as one row per piece, and
// an import of the export rebuilds the runs with the same ids.
func TestRunsExportRows(t *testing.T) {
	src, _ := mustCreate(t, Options{})
	out := mustIngest(t, src, append(steadyPieces("dev1", 8, 5), steadyPieces("dev2", 8)...))
	want := dumpJSON(t, src)
	var d dump
	d, err := src.dump()
	must(t, err)
	if len(d.Pieces) != len(out) {
		t.Fatalf("export has %d piece rows, want %d", len(d.Pieces), len(out))
	}
	for _, format := range []string{FormatJSON, FormatSQL} {
		t.Run(format, func(t *testing.T) {
			dst, buf := roundTrip(t, src, format, want)
			if n := runsOf(t, dst); n != 3 {
				t.Fatalf("import stored %d runs, want 3", n)
			}
			if err := dst.Import(bytes.NewReader(buf.Bytes()), format); err == nil {
				t.Fatal("importing the same pieces twice succeeded")
			}
			// the source may have used the ids after an imported run's
			// last: a new backup starts a run of its own
			more := mustIngest(t, dst, steadyPieces("dev2", 9)[8:])
			if n := runsOf(t, dst); n != 4 {
				t.Fatalf("a backup after the import made %d runs, want 4 (id %s)", n, more[0].ID)
			}
		})
	}
}

// TestCheckRunDamage damages what runs add (a run tail, the folded tag
// attributes, a run's id range): check reports each.
func TestCheckRunDamage(t *testing.T) {
	tests := []struct {
		name   string
		damage func(tx *bbolt.Tx) error
	}{
		{"run tail cut short", func(tx *bbolt.Tx) error {
			v := tx.Bucket(bktLatest).Get([]byte("dev1"))
			return tx.Bucket(bktLatest).Put([]byte("dev1"), bytes.Clone(v[:len(v)-2]))
		}},
		{"run tail of another run", func(tx *bbolt.Tx) error {
			v := bytes.Clone(tx.Bucket(bktLatest).Get([]byte("dev1")))
			v[23]++
			return tx.Bucket(bktLatest).Put([]byte("dev1"), v)
		}},
		{"tag attribute lost", func(tx *bbolt.Tx) error {
			return tx.Bucket(bktIdxGroup).Put(append(prefixOf("Daily Device Backup"), "dev1"...), nil)
		}},
		{"tag attribute no piece has", func(tx *bbolt.Tx) error {
			r := record{Client: "dev2", Group: "Daily Device Backup", Tag: tagmatch.Tag{{Key: "model", Value: "S1"}, {Key: "x", Value: "y"}}}
			s := groupNeeds{}
			s.add(&r)
			return tx.Bucket(bktIdxGroup).Put(groupKey(&r), s[string(groupKey(&r))].encode())
		}},
		{"runs overlap", func(tx *bbolt.Tx) error {
			k, v := tx.Bucket(bktPieces).Cursor().First()
			return tx.Bucket(bktPieces).Put(keyPlus(k, 1), bytes.Clone(v))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := mustCreate(t, Options{})
			mustIngest(t, c, append(steadyPieces("dev1", 10), steadyPieces("dev2", 3)...))
			if ps := verifyOpen(t, c); len(ps) > 0 {
				t.Fatalf("check reports %v before any damage", ps)
			}
			must(t, update(c.shards[0].db, "damage", tt.damage))
			ps := verifyOpen(t, c)
			if len(ps) == 0 {
				t.Fatal("check reports nothing")
			}
			for _, p := range ps {
				if !errors.Is(p.Err, ErrCorrupt) {
					t.Fatalf("problem %v does not wrap ErrCorrupt", p)
				}
			}
		})
	}
}
