package catalog

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite docs/spec/catalog.sql from Schema")

// TestSpecSchema keeps docs/spec/catalog.sql identical to Schema.
func TestSpecSchema(t *testing.T) {
	p := filepath.Join("..", "docs", "spec", "catalog.sql")
	if *updateGolden {
		must(t, os.WriteFile(p, []byte(Schema), 0o644))
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -run TestSpecSchema -update ./catalog)", err)
	}
	if string(data) != Schema {
		t.Fatalf("docs/spec/catalog.sql differs from catalog.Schema; run go test -run TestSpecSchema -update ./catalog")
	}
}
