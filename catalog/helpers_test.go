package catalog

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/tagmatch"
)

// mustCreate makes a fresh installation in a temporary directory and opens it.
func mustCreate(t testing.TB, opts Options) (*Catalog, string) {
	t.Helper()
	mbr, err := Init(t.TempDir(), InitOptions{Server: "10.10.11.1", DRServer: "10.50.4.1"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(mbr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, mbr
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixturePieces: clients home1..homeN, each with n backups an hour apart, in
// groups North/South by parity, tags with zone and model.
func fixturePieces(clients, n int) []NewPiece {
	var ps []NewPiece
	for c := 1; c <= clients; c++ {
		zone, group := "North", "North Device Backup"
		if c%2 == 0 {
			zone, group = "South", "South Device Backup"
		}
		for i := 0; i < n; i++ {
			ps = append(ps, NewPiece{
				Client: fmt.Sprintf("home%d", c), Name: "settings", Type: "settings/cbor", Owner: "facilities",
				Location: "catalog.db", Group: group, Job: fmt.Sprintf("job-%d", i),
				Time: t0.Add(time.Duration(i) * time.Hour), Expiry: t0.AddDate(1, 0, 0),
				Tag: tagmatch.Tag{{Key: "manufacturer", Value: "Acme"}, {Key: "model", Value: fmt.Sprintf("T%d", c%3)}, {Key: "zone", Value: zone}},
				// content repeats across clients of a zone: dedupe has work to do
				Content:  []byte(fmt.Sprintf(`{"zone":%q,"setpoint":%d}`, zone, 20+i)),
				Optional: map[string]string{"firmware": "1.2"},
			})
		}
	}
	return ps
}

func mustIngest(t testing.TB, c *Catalog, ps []NewPiece) []Piece {
	t.Helper()
	out, err := c.Ingest(context.Background(), ps)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sha256sum(b []byte) [32]byte { return sha256.Sum256(b) }

func timeStep(i int) time.Duration { return time.Duration(i) * time.Minute }
