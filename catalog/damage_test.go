package catalog

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// TestVerifyRandomDamage flips random bytes of a catalog file: Verify must
// come back (reporting or not: bbolt pages carry no checksums, and a byte in
// free space changes nothing), never crash.
func TestVerifyRandomDamage(t *testing.T) {
	n := 60
	if s := os.Getenv("FLEETVAULT_DAMAGE_N"); s != "" {
		fmt.Sscan(s, &n)
	}
	if testing.Short() {
		n = 15
	}
	c, mbr := mustCreate(t, Options{})
	mustIngest(t, c, fixturePieces(200, 10)) // enough for branch pages
	must(t, c.Close())
	dbPath := filepath.Join(filepath.Dir(mbr), "catalog.db")
	pristine, err := os.ReadFile(dbPath)
	must(t, err)
	seed := uint64(1)
	if s := os.Getenv("FLEETVAULT_DAMAGE_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	reported := 0
	for i := 0; i < n; i++ {
		data := append([]byte(nil), pristine...)
		for j := 0; j < 1+rng.IntN(3); j++ {
			data[rng.IntN(len(data))] ^= byte(1 + rng.IntN(255))
		}
		writeFile(t, dbPath, data)
		if ps := verify(t, mbr, true); len(ps) > 0 {
			reported++
		}
	}
	t.Logf("%d of %d damaged files reported", reported, n)
}
