package catalog

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/tagmatch"
)

// legacyDir is an installation written by the catalog format before piece
// runs (commit a6cc1c1 of main, record version 1, one record and one
// idx/time entry per piece), with legacyExport its dump as that code made
// it (see legacyPieces).
const (
	legacyDir    = "testdata/legacy-v1"
	legacyExport = "testdata/legacy-v1.dump.json"
)

// legacyPieces are the fixture's pieces: three clients with distinct
// nightly content, two whose content never changes (what runs compress),
// and a backfill older than its client's head.
func legacyPieces() []NewPiece {
	ps := fixturePieces(3, 4)
	for c := 1; c <= 2; c++ {
		for i := 0; i < 5; i++ {
			ps = append(ps, NewPiece{
				Client: fmt.Sprintf("steady%d", c), Name: "settings", Type: "settings/cbor", Group: "Daily Device Backup",
				Time: t0.Add(time.Duration(i) * 24 * time.Hour), Tag: tagmatch.Tag{{Key: "model", Value: "S1"}},
				Content: []byte(`{"steady":true}`),
			})
		}
	}
	ps = append(ps, NewPiece{Client: "home1", Name: "settings", Type: "settings/cbor", Group: "North Device Backup",
		Time: t0.Add(-time.Hour), Content: []byte(`{"backfill":1}`)})
	return ps
}

// The installation in legacyDir and its export legacyExport were written
// once, by the record-per-piece format's code (commit a6029c6, which holds
// the test that wrote them), from
// legacyPieces with a keep rule {Client: steady1, Last: 2}; they are never
// rewritten: the code that wrote that format is gone, so writing them now
// would write today's format under the old one's name.

// copyLegacy copies the legacy installation to a temporary directory.
func copyLegacy(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(legacyDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(legacyDir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		must(t, os.MkdirAll(filepath.Join(dst, filepath.Dir(rel)), 0o755))
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	must(t, err)
	return filepath.Join(dst, "fleetvault.mbr")
}

// TestPreRunsInstallation opens a catalog written by the format before
// runs, read-only and for writing: it lists, restores, exports and checks as
// that code did, and takes new backups.
func TestPreRunsInstallation(t *testing.T) {
	want, err := os.ReadFile(legacyExport)
	must(t, err)
	for _, readOnly := range []bool{true, false} {
		t.Run(fmt.Sprintf("read-only=%v", readOnly), func(t *testing.T) {
			mbr := copyLegacy(t)
			c, err := Open(mbr, Options{ReadOnly: readOnly})
			must(t, err)
			defer c.Close()
			if got := dumpJSON(t, c); !bytes.Equal(got, want) {
				t.Fatalf("export differs from the legacy code's:\n%s\nwant\n%s", got, want)
			}
			if ps := verifyOpen(t, c); len(ps) > 0 {
				t.Fatalf("check reports %v", ps)
			}
			ps, err := c.Pieces(Query{Client: "steady1"})
			must(t, err)
			if len(ps) != 5 {
				t.Fatalf("steady1 has %d pieces, want 5", len(ps))
			}
			for _, p := range ps {
				data, err := c.Content(p.Ref)
				must(t, err)
				if string(data) != `{"steady":true}` {
					t.Fatalf("piece %s content %q", p.ID, data)
				}
				if got, err := c.Piece(p.ID); err != nil || !got.Time.Equal(p.Time) {
					t.Fatalf("Piece(%s) = %v, %v", p.ID, got, err)
				}
			}
			all, err := c.Pieces(Query{})
			must(t, err)
			if len(all) != len(legacyPieces()) {
				t.Fatalf("%d pieces listed, want %d", len(all), len(legacyPieces()))
			}
			if readOnly {
				return
			}
			np := legacyPieces()[12]
			np.Time = t0.Add(5 * 24 * time.Hour)
			out := mustIngest(t, c, []NewPiece{np, np})
			if out[0].ID == out[1].ID || out[0].ID == ps[0].ID {
				t.Fatalf("new ids %s %s collide", out[0].ID, out[1].ID)
			}
			latest, err := c.Latest("steady1")
			must(t, err)
			if latest.ID != out[1].ID {
				t.Fatalf("latest of steady1 is %s, want %s", latest.ID, out[1].ID)
			}
			rep, err := c.Prune(context.Background(), []KeepRule{{Client: "steady1", Last: 2}}, false)
			must(t, err)
			if len(rep.Removed) != 5 {
				t.Fatalf("prune removed %d, want 5", len(rep.Removed))
			}
			if ps := verifyOpen(t, c); len(ps) > 0 {
				t.Fatalf("check after new backups and prune reports %v", ps)
			}
		})
	}
}

// verifyOpen runs Check on an open catalog and returns its problems.
func verifyOpen(t *testing.T, c *Catalog) []Problem {
	t.Helper()
	var ps []Problem
	must(t, c.Check(true, func(p Problem) { ps = append(ps, p) }))
	return ps
}
