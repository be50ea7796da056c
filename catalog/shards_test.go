package catalog

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestCatalogs routes clients to the catalog their device names and reads
// across all catalogs.
func TestCatalogs(t *testing.T) {
	mbr, err := Init(t.TempDir(), InitOptions{Catalogs: map[string]string{"emea": "catalogs/emea.db"}})
	must(t, err)
	c, err := Open(mbr, Options{Now: func() time.Time { return t0.AddDate(2, 0, 0) }})
	must(t, err)
	defer c.Close()
	must(t, c.PutDevices(context.Background(), []Device{{ID: "home2", Catalog: "emea"}, {ID: "home1"}}))
	out := mustIngest(t, c, fixturePieces(4, 2))
	for _, p := range out {
		inEmea := strings.HasPrefix(p.ID, "emea/")
		if inEmea != (p.Client == "home2") {
			t.Fatalf("piece %s of %s in the wrong catalog", p.ID, p.Client)
		}
	}
	t.Run("reads span catalogs", func(t *testing.T) {
		all, err := c.Pieces(Query{})
		if err != nil || len(all) != 8 {
			t.Fatalf("Pieces = %d, %v", len(all), err)
		}
		p, err := c.Latest("home2")
		if err != nil || !strings.HasPrefix(p.ID, "emea/") {
			t.Fatalf("Latest(home2) = %s, %v", p.ID, err)
		}
		if _, err := c.Piece(p.ID); err != nil {
			t.Fatal(err)
		}
		cands, err := c.Candidates("South Device Backup")
		if err != nil || len(cands) != 2 {
			t.Fatalf("Candidates = %d, %v", len(cands), err)
		}
		data, err := c.Content(p.Ref)
		if err != nil || len(data) == 0 {
			t.Fatalf("Content = %q, %v", data, err)
		}
	})
	t.Run("export and import keep catalogs", func(t *testing.T) {
		var buf bytes.Buffer
		must(t, c.Export(&buf, FormatSQL))
		mbr2, err := Init(t.TempDir(), InitOptions{Catalogs: map[string]string{"emea": "other/emea.db"}})
		must(t, err)
		c2, err := Open(mbr2, Options{})
		must(t, err)
		defer c2.Close()
		must(t, c2.Import(&buf, FormatSQL))
		p, err := c2.Latest("home2")
		if err != nil || !strings.HasPrefix(p.ID, "emea/") {
			t.Fatalf("imported Latest(home2) = %s, %v", p.ID, err)
		}
	})
	t.Run("prune spans catalogs", func(t *testing.T) {
		rep, err := c.Prune(context.Background(), nil, false)
		if err != nil || len(rep.Removed) != 8 { // every fixture piece expires after a year
			t.Fatalf("Prune removed %d, %v", len(rep.Removed), err)
		}
		var problems []Problem
		must(t, c.Check(true, func(p Problem) { problems = append(problems, p) }))
		if len(problems) > 0 {
			t.Fatal(problems)
		}
	})
}
