package catalog

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/catalog/dedupe"
)

func TestIngestAndQueries(t *testing.T) {
	c, _ := mustCreate(t, Options{})
	in := fixturePieces(6, 5) // home1..home6, 5 backups each
	out := mustIngest(t, c, in)
	if len(out) != len(in) {
		t.Fatalf("Ingest returned %d pieces, want %d", len(out), len(in))
	}
	t.Run("content round trip and dedupe", func(t *testing.T) {
		for i, p := range out {
			data, err := c.Content(p.Ref)
			if err != nil || !bytes.Equal(data, in[i].Content) {
				t.Fatalf("Content(%s) = %q, %v", p.Ref, data, err)
			}
			if p.Ref != dedupe.Ref(sha256sum(in[i].Content)) {
				t.Fatalf("ref is not the SHA-256 of the content")
			}
		}
	})
	t.Run("piece by id", func(t *testing.T) {
		p, err := c.Piece(out[3].ID)
		if err != nil || p.Client != out[3].Client || !p.Time.Equal(out[3].Time) || p.Optional["firmware"] != "1.2" {
			t.Fatalf("Piece = %+v, %v", p, err)
		}
	})
	tests := []struct {
		name    string
		q       Query
		want    int
		newest  time.Time
		allFrom func(Piece) bool
	}{
		{"by client", Query{Client: "home2"}, 5, t0.Add(4 * time.Hour), func(p Piece) bool { return p.Client == "home2" }},
		{"by client and time", Query{Client: "home2", From: t0.Add(time.Hour), To: t0.Add(2 * time.Hour)}, 2, t0.Add(2 * time.Hour), nil},
		{"by group", Query{Group: "North Device Backup"}, 15, t0.Add(4 * time.Hour), func(p Piece) bool { return p.Group == "North Device Backup" }},
		{"by tag", Query{TagKey: "zone", TagValue: "South"}, 15, t0.Add(4 * time.Hour), func(p Piece) bool { return p.Group == "South Device Backup" }},
		{"by tag within group", Query{TagKey: "model", TagValue: "T1", Group: "North Device Backup"}, 5, t0.Add(4 * time.Hour), nil},
		{"by tag within other group", Query{TagKey: "zone", TagValue: "South", Group: "North Device Backup"}, 0, time.Time{}, nil},
		{"by time", Query{From: t0.Add(3 * time.Hour)}, 12, t0.Add(4 * time.Hour), nil},
		{"limit", Query{Group: "South Device Backup", Limit: 4}, 4, t0.Add(4 * time.Hour), nil},
		{"unknown client", Query{Client: "nobody"}, 0, time.Time{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := c.Pieces(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) != tt.want {
				t.Fatalf("got %d pieces, want %d", len(ps), tt.want)
			}
			for i := range ps {
				if i > 0 && ps[i].Time.After(ps[i-1].Time) {
					t.Fatalf("not newest first at %d", i)
				}
				if tt.allFrom != nil && !tt.allFrom(ps[i]) {
					t.Fatalf("piece %+v does not match", ps[i])
				}
			}
			if len(ps) > 0 && !ps[0].Time.Equal(tt.newest) {
				t.Errorf("newest = %v, want %v", ps[0].Time, tt.newest)
			}
		})
	}
	t.Run("latest", func(t *testing.T) {
		p, err := c.Latest("home3")
		if err != nil || !p.Time.Equal(t0.Add(4*time.Hour)) || p.Client != "home3" {
			t.Fatalf("Latest = %+v, %v", p, err)
		}
		if _, err := c.Latest("nobody"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Latest(nobody) = %v, want ErrNotFound", err)
		}
	})
	t.Run("candidates", func(t *testing.T) {
		ps, err := c.Candidates("North Device Backup")
		if err != nil || len(ps) != 3 {
			t.Fatalf("Candidates = %d, %v", len(ps), err)
		}
		for i, want := range []string{"home1", "home3", "home5"} {
			if ps[i].Client != want || !ps[i].Time.Equal(t0.Add(4*time.Hour)) {
				t.Errorf("candidate %d = %s at %v", i, ps[i].Client, ps[i].Time)
			}
		}
	})
	t.Run("bad input", func(t *testing.T) {
		_, err := c.Ingest(context.Background(), []NewPiece{{Client: "a\x00b", Name: "x"}})
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("err = %v, want ErrInvalid", err)
		}
		if _, err := c.Ingest(context.Background(), []NewPiece{{Name: "x"}}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("err = %v, want ErrInvalid", err)
		}
	})
}

func TestRestoreHistory(t *testing.T) {
	c, _ := mustCreate(t, Options{})
	ev := []RestoreEvent{
		{Device: "home1", PieceID: "0000000000000001", Job: "job-a", Time: t0, Outcome: OutcomeRestored},
		{Device: "home2", Job: "job-a", Time: t0.Add(time.Second), Outcome: OutcomeSkipped, Detail: "ambiguous: two candidates"},
		{Device: "home1", Job: "job-b", Time: t0.Add(time.Hour), Outcome: OutcomeFailed, Detail: "timeout"},
	}
	if err := c.RecordRestores(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		q        RestoreQuery
		outcomes []string
	}{
		{"by device", RestoreQuery{Device: "home1"}, []string{OutcomeFailed, OutcomeRestored}},
		{"by job", RestoreQuery{Job: "job-a"}, []string{OutcomeSkipped, OutcomeRestored}},
		{"all", RestoreQuery{}, []string{OutcomeFailed, OutcomeSkipped, OutcomeRestored}},
		{"time range", RestoreQuery{Device: "home1", To: t0.Add(time.Minute)}, []string{OutcomeRestored}},
		{"limit", RestoreQuery{Limit: 1}, []string{OutcomeFailed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Restores(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			var outs []string
			for _, e := range got {
				outs = append(outs, e.Outcome)
			}
			if len(outs) != len(tt.outcomes) {
				t.Fatalf("outcomes = %v, want %v", outs, tt.outcomes)
			}
			for i := range outs {
				if outs[i] != tt.outcomes[i] {
					t.Fatalf("outcomes = %v, want %v", outs, tt.outcomes)
				}
			}
		})
	}
	if err := c.RecordRestores(context.Background(), []RestoreEvent{{Device: "x"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("event without outcome: %v", err)
	}
}

// TestIngestOutOfOrder backfills older pieces after newer ones: each
// client's chain must stay in time order.
func TestIngestOutOfOrder(t *testing.T) {
	c, _ := mustCreate(t, Options{})
	ps := fixturePieces(3, 6)
	order := []int{5, 0, 3, 1, 4, 2} // backup index per round
	for _, i := range order {
		var batch []NewPiece
		for cl := 0; cl < 3; cl++ {
			batch = append(batch, ps[cl*6+i])
		}
		mustIngest(t, c, batch)
	}
	for _, client := range []string{"home1", "home2", "home3"} {
		got, err := c.Pieces(Query{Client: client})
		if err != nil || len(got) != 6 {
			t.Fatalf("%s: %d pieces, %v", client, len(got), err)
		}
		for i, p := range got {
			if want := t0.Add(time.Duration(5-i) * time.Hour); !p.Time.Equal(want) {
				t.Fatalf("%s piece %d at %v, want %v", client, i, p.Time, want)
			}
		}
	}
	var problems []Problem
	if err := c.Check(true, func(p Problem) { problems = append(problems, p) }); err != nil || len(problems) > 0 {
		t.Fatalf("check: %v %v", err, problems)
	}
}
