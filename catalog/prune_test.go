package catalog

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/tagmatch"
)

// dailyPieces: one client, one backup every 6 hours for days days, each
// with distinct content.
func dailyPieces(client, group string, days int, expiry time.Time) []NewPiece {
	var ps []NewPiece
	for i := 0; i < days*4; i++ {
		ps = append(ps, NewPiece{Client: client, Name: "settings", Group: group, Time: t0.Add(time.Duration(i) * 6 * time.Hour),
			Expiry: expiry, Tag: tagmatch.Tag{{Key: "zone", Value: "North"}}, Content: []byte(client + time.Duration(i).String())})
	}
	return ps
}

func TestPrune(t *testing.T) {
	now := t0.AddDate(0, 2, 0)
	tests := []struct {
		name    string
		pieces  []NewPiece
		rules   []KeepRule
		removed int
	}{
		{"no rule keeps all", dailyPieces("a", "g", 10, time.Time{}), nil, 0},
		{"keep last 3", dailyPieces("a", "g", 10, time.Time{}), []KeepRule{{Client: "a", Last: 3}}, 37},
		{"keep daily 5", dailyPieces("a", "g", 10, time.Time{}), []KeepRule{{Client: "a", Daily: 5}}, 35},
		{"keep last 2 and daily 5 overlap", dailyPieces("a", "g", 10, time.Time{}), []KeepRule{{Client: "a", Last: 2, Daily: 5}}, 34},
		{"group rule", dailyPieces("a", "g", 10, time.Time{}), []KeepRule{{Group: "g", Weekly: 1}}, 39},
		{"client rule beats group rule", dailyPieces("a", "g", 10, time.Time{}), []KeepRule{{Group: "g", Last: 1}, {Client: "a", Last: 10}}, 30},
		{"expired go", dailyPieces("a", "g", 10, t0.AddDate(0, 1, 0)), nil, 40},
		{"other client untouched", dailyPieces("b", "g2", 10, time.Time{}), []KeepRule{{Client: "a", Last: 1}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := mustCreate(t, Options{Now: func() time.Time { return now }})
			mustIngest(t, c, tt.pieces)
			dry, err := c.Prune(context.Background(), tt.rules, true)
			if err != nil {
				t.Fatal(err)
			}
			if len(dry.Removed) != tt.removed || dry.Freed != 0 {
				t.Fatalf("dry run removes %d (freed %d), want %d", len(dry.Removed), dry.Freed, tt.removed)
			}
			if all, _ := c.Pieces(Query{}); len(all) != len(tt.pieces) {
				t.Fatalf("dry run deleted pieces")
			}
			rep, err := c.Prune(context.Background(), tt.rules, false)
			if err != nil {
				t.Fatal(err)
			}
			all, _ := c.Pieces(Query{})
			if len(rep.Removed) != tt.removed || len(all) != len(tt.pieces)-tt.removed || rep.Kept != len(all) {
				t.Fatalf("removed %d, %d left, kept %d; want %d removed", len(rep.Removed), len(all), rep.Kept, tt.removed)
			}
			if tt.removed > 0 && rep.Freed <= 0 {
				t.Errorf("nothing freed")
			}
			for _, p := range rep.Removed {
				if _, err := c.Content(p.Ref); !errors.Is(err, ErrNotFound) {
					t.Fatalf("content of pruned piece %s still there: %v", p.ID, err)
				}
			}
			var problems []Problem
			if err := c.Check(true, func(p Problem) { problems = append(problems, p) }); err != nil || len(problems) > 0 {
				t.Fatalf("check after prune: %v %v", err, problems)
			}
		})
	}
}

func TestKeepRulesStored(t *testing.T) {
	c, _ := mustCreate(t, Options{})
	rules := []KeepRule{{Client: "a", Last: 3}, {Group: "g", Daily: 7, Monthly: 12}}
	if err := c.SetKeepRules(rules); err != nil {
		t.Fatal(err)
	}
	got, err := c.KeepRules()
	if err != nil || len(got) != 2 {
		t.Fatalf("KeepRules = %v, %v", got, err)
	}
	if err := c.SetKeepRules([]KeepRule{{Last: 1}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("rule without scope: %v", err)
	}
}

// TestPruneGroup: a group's prune touches only the series of that backup
// group, removes exactly what the whole-catalog prune removes there, and its
// dry run lists what the real one then removes.
func TestPruneGroup(t *testing.T) {
	now := t0.AddDate(0, 2, 0)
	c, _ := mustCreate(t, Options{Now: func() time.Time { return now }})
	mustIngest(t, c, append(dailyPieces("a", "north", 10, time.Time{}), dailyPieces("b", "south", 10, time.Time{})...))
	rules := []KeepRule{{Group: "north", Daily: 3}, {Group: "south", Last: 1}}
	ctx := context.Background()
	whole, err := c.Prune(ctx, rules, true)
	if err != nil {
		t.Fatal(err)
	}
	var wantNorth []string
	for _, p := range whole.Removed {
		if p.Group == "north" {
			wantNorth = append(wantNorth, p.ID)
		}
	}
	dry, err := c.PruneGroup(ctx, "north", rules, true)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := c.PruneGroup(ctx, "north", rules, false)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(ps []PrunedPiece) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.ID)
		}
		return out
	}
	if got := ids(dry.Removed); len(got) != 37 || strings.Join(got, ",") != strings.Join(wantNorth, ",") {
		t.Fatalf("dry run removes %v, want %v", got, wantNorth)
	}
	if got := ids(rep.Removed); strings.Join(got, ",") != strings.Join(wantNorth, ",") || rep.Kept != 3 {
		t.Fatalf("prune removed %v (kept %d), want %v", got, rep.Kept, wantNorth)
	}
	if south, _ := c.Pieces(Query{Group: "south"}); len(south) != 40 {
		t.Fatalf("south has %d pieces after pruning north, want 40", len(south))
	}
	if _, err := c.PruneGroup(ctx, "", rules, true); !errors.Is(err, ErrInvalid) {
		t.Fatalf("PruneGroup without a group: %v", err)
	}
}
