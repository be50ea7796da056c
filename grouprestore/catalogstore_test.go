package grouprestore

import (
	"context"
	"fmt"
	"testing"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/catalog"
)

// newTestCatalog makes an installation in dir and opens it until the test ends.
func newTestCatalog(t *testing.T, dir string) *catalog.Catalog {
	t.Helper()
	mbr, err := catalog.Init(dir, catalog.InitOptions{})
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

// TestWithRealCatalog backs up a model house into the bbolt catalog and
// restores it to new homes through the adapter.
func TestWithRealCatalog(t *testing.T) {
	dir := t.TempDir()
	c := newTestCatalog(t, dir)

	f := newFleet(t)
	f.device("model-house", "ref-north-climate", climate("North"), northSettings)
	f.device("model-house", "ref-south-climate", climate("South"), southSettings)
	for i := 0; i < 10; i++ {
		f.device("homes", fmt.Sprintf("home%02d-climate", i), climate([]string{"North", "South"}[i%2]), factory)
	}
	var devs []catalog.Device
	for id := range f.devices {
		devs = append(devs, catalog.Device{ID: id, Identifier: "mqtt://" + id})
	}
	ctx := context.Background()
	if err := c.PutDevices(ctx, devs); err != nil {
		t.Fatal(err)
	}
	for group, ts := range f.dir {
		if err := c.CreateGroup(group, catalog.Group{Kind: catalog.GroupDevices}); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, tg := range ts {
			ids = append(ids, tg.ID)
		}
		if err := c.AddMembers(group, ids); err != nil {
			t.Fatal(err)
		}
	}

	store := NewCatalogStore(c)
	e, err := New(Options{JournalPath: dir + "/jobs.db", Catalog: store, Directory: store, Transports: map[string]agent.Transport{"mqtt": f.tr}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	b, err := e.Start(ctx, Spec{Kind: KindBackup, Source: "model-house", Target: "reference-iot"})
	if err != nil {
		t.Fatal(err)
	}
	if p := wait(t, b); p.Counts[BackedUp] != 2 {
		t.Fatalf("backup counts %v", p.Counts)
	}
	r, err := e.Start(ctx, Spec{Kind: KindRestore, Source: "reference-iot", Target: "homes"})
	if err != nil {
		t.Fatal(err)
	}
	if p := wait(t, r); p.Counts[Restored] != 10 {
		t.Fatalf("restore counts %v (%v)", p.Counts, r.Devices())
	}
	for i := 0; i < 10; i++ {
		id := fmt.Sprintf("home%02d-climate", i)
		want := []agent.Settings{northSettings, southSettings}[i%2]
		if got := hashOf(t, f.devices[id].current()); got != hashOf(t, want) {
			t.Errorf("%s holds %s", id, got)
		}
	}
	hist, err := c.Restores(catalog.RestoreQuery{Job: r.ID()})
	if err != nil || len(hist) != 10 {
		t.Fatalf("restore history: %d lines, %v", len(hist), err)
	}
	for _, h := range hist {
		// The hash of what was written and verified (catalog.md, restores).
		if p, err := c.Piece(h.PieceID); err != nil || h.Ref == "" || h.Ref != p.Ref.String() {
			t.Errorf("%s: restore history content hash %q, want its piece %s's (%v)", h.Device, h.Ref, h.PieceID, err)
		}
	}
	snaps, err := c.Pieces(catalog.Query{Group: "snapshots"})
	if err != nil || len(snaps) != 10 {
		t.Fatalf("snapshots: %d, %v", len(snaps), err)
	}
}
