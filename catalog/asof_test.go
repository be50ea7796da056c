package catalog

import (
	"errors"
	"testing"
	"time"
)

func TestAsOf(t *testing.T) {
	c, _ := mustCreate(t, Options{})
	// home1..home4, 3 backups each, an hour apart from t0; home1 and home3
	// in the North group, home2 and home4 in the South.
	mustIngest(t, c, fixturePieces(4, 3))
	version := func(p Piece) int { return int(p.Time.Sub(t0) / time.Hour) }
	for _, tc := range []struct {
		name string
		at   time.Time
		want int // the version every client's candidate must be; -1: none
	}{
		{name: "no bound: newest", at: time.Time{}, want: 2},
		{name: "exactly the second backup", at: t0.Add(time.Hour), want: 1},
		{name: "between the first and the second", at: t0.Add(30 * time.Minute), want: 0},
		{name: "after the last", at: t0.Add(24 * time.Hour), want: 2},
		{name: "before the first", at: t0.Add(-time.Second), want: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := c.CandidatesAsOf("North Device Backup", tc.at)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want < 0 {
				if len(ps) != 0 {
					t.Fatalf("candidates %v, want none", ps)
				}
				return
			}
			if len(ps) != 2 {
				t.Fatalf("%d candidates, want home1 and home3", len(ps))
			}
			for _, p := range ps {
				if version(p) != tc.want {
					t.Errorf("%s: version %d, want %d", p.Client, version(p), tc.want)
				}
			}
			l, err := c.LatestAsOf("home2", "settings/cbor", tc.at)
			if err != nil || version(l) != tc.want || l.Client != "home2" {
				t.Errorf("LatestAsOf(home2) = %+v, %v; want version %d", l, err, tc.want)
			}
		})
	}
	t.Run("type filter and not found", func(t *testing.T) {
		if _, err := c.LatestAsOf("home2", "snapshot", time.Time{}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
		if _, err := c.LatestAsOf("home2", "", t0.Add(-time.Hour)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
}
