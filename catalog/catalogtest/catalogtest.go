// Package catalogtest opens fresh catalogs for the tests of the packages
// built on package catalog.
package catalogtest

import (
	"testing"

	"github.com/fleetvault/fleetvault/catalog"
)

// New creates an installation in a temporary directory and opens its
// catalog, closed when the test ends.
func New(t testing.TB) *catalog.Catalog {
	t.Helper()
	mbr, err := catalog.Init(t.TempDir(), catalog.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := catalog.Open(mbr, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
