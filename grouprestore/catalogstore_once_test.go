package grouprestore

import (
	"context"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// TestCatalogStoreJobPieceAndRegisteredTag: the bbolt adapter finds the piece
// a job stored for a client (and only that job's, of that type), and gives
// each group member the tag it is registered with.
func TestCatalogStoreJobPieceAndRegisteredTag(t *testing.T) {
	c := newTestCatalog(t, t.TempDir())
	ctx := context.Background()
	s := NewCatalogStore(c)
	start := time.Now()
	stored, err := s.Store(ctx, []NewPiece{
		{Client: "dev1", Group: "g", Type: "settings", Job: "j1", Settings: []byte{0xa0}, Time: start},
		{Client: "dev1", Group: "snapshots", Type: "snapshot", Job: "j2", Settings: []byte{0xa1}, Time: start.Add(time.Second)},
		{Client: "dev2", Group: "g", Type: "settings", Job: "j2", Settings: []byte{0xa0}, Time: start},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, job, client, typ string
		since                  time.Time
		want                   string // piece id, "" for none
	}{
		{name: "found", job: "j1", client: "dev1", typ: "settings", since: start.Add(-time.Hour), want: stored[0].ID},
		{name: "other type", job: "j1", client: "dev1", typ: "snapshot", since: start.Add(-time.Hour)},
		{name: "snapshot", job: "j2", client: "dev1", typ: "snapshot", since: start.Add(-time.Hour), want: stored[1].ID},
		{name: "other client", job: "j1", client: "dev2", typ: "settings", since: start.Add(-time.Hour)},
		{name: "before since", job: "j1", client: "dev1", typ: "settings", since: start.Add(time.Minute)},
		{name: "unknown client", job: "j1", client: "nobody", typ: "settings", since: start.Add(-time.Hour)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, ok, err := s.JobPiece(ctx, tc.job, tc.client, tc.typ, tc.since)
			if err != nil || ok != (tc.want != "") || p.ID != tc.want {
				t.Fatalf("JobPiece = %+v, %v, %v; want %q", p, ok, err, tc.want)
			}
		})
	}

	reg := tagmatch.Tag{{Key: "manufacturer", Value: "Thermo Ltd."}, {Key: "model", Value: "t1"}}
	if err := c.PutDevices(ctx, []catalog.Device{
		{ID: "dev1", Optional: map[string]string{catalog.OptionalTag: reg.String()}},
		{ID: "dev2"},
		{ID: "dev3", Optional: map[string]string{catalog.OptionalTag: "=broken"}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateGroup("homes", catalog.Group{Kind: catalog.GroupDevices}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddMembers("homes", []string{"dev1", "dev2"}); err != nil {
		t.Fatal(err)
	}
	ts, err := s.Members(ctx, "homes")
	if err != nil || len(ts) != 2 {
		t.Fatalf("members %+v, %v", ts, err)
	}
	for _, tg := range ts {
		if want := map[string]tagmatch.Tag{"dev1": reg}[tg.ID]; !tg.Tag.Equal(want) {
			t.Errorf("%s: registered tag %v, want %v", tg.ID, tg.Tag, want)
		}
	}
	if err := c.AddMembers("homes", []string{"dev3"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Members(ctx, "homes"); err == nil {
		t.Error("a member with a damaged registered tag was resolved")
	}
}
