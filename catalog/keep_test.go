package catalog

import (
	"context"
	"testing"
	"time"
)

func TestKeepers(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.DateTime, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// newest first
	times := []time.Time{
		at("2026-03-02 10:30:00"), // 0
		at("2026-03-02 10:30:00"), // 1: equal to 0
		at("2026-03-02 10:05:00"), // 2: same hour
		at("2026-03-02 09:59:59"), // 3
		at("2026-03-01 23:00:00"), // 4: Sunday, ISO week 9
		at("2026-02-23 08:00:00"), // 5: Monday, ISO week 9
		at("2026-02-22 08:00:00"), // 6: Sunday, week 8, February
		at("2025-12-29 00:00:00"), // 7: ISO week 1 of 2026, December 2025
		at("2025-01-01 00:00:00"), // 8: ISO week 1 of 2025
	}
	tests := []struct {
		name string
		rule KeepRule
		want []int
	}{
		{"empty rule keeps all", KeepRule{}, []int{0, 1, 2, 3, 4, 5, 6, 7, 8}},
		{"last counts equal times one by one", KeepRule{Last: 2}, []int{0, 1}},
		{"hourly keeps the first of equal times", KeepRule{Hourly: 3}, []int{0, 3, 4}},
		{"daily", KeepRule{Daily: 3}, []int{0, 4, 5}},
		{"weekly by ISO week and ISO year", KeepRule{Weekly: 5}, []int{0, 4, 6, 7, 8}},
		{"monthly", KeepRule{Monthly: 3}, []int{0, 5, 7}},
		{"yearly", KeepRule{Yearly: 5}, []int{0, 7}},
		{"counts add up", KeepRule{Last: 1, Yearly: 2}, []int{0, 7}},
		{"more than there is", KeepRule{Daily: 100}, []int{0, 4, 5, 6, 7, 8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keep := Keepers(tt.rule, times)
			var got []int
			for i, k := range keep {
				if k {
					got = append(got, i)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("keeps %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("keeps %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// TestPruneEqualTimesByID: of two pieces with the same time, the one with
// the smaller id is the one a period keeps, whatever the storage order.
func TestPruneEqualTimesByID(t *testing.T) {
	c, _ := mustCreate(t, Options{})
	ps := dailyPieces("a", "g", 1, time.Time{})
	for i := range ps {
		ps[i].Time = t0
	}
	out := mustIngest(t, c, ps)
	rep, err := c.Prune(context.Background(), []KeepRule{{Client: "a", Daily: 1}}, true)
	if err != nil {
		t.Fatal(err)
	}
	minID := out[0].ID
	for _, p := range out {
		minID = min(minID, p.ID)
	}
	if len(rep.Removed) != len(ps)-1 {
		t.Fatalf("removes %d, want %d", len(rep.Removed), len(ps)-1)
	}
	for _, p := range rep.Removed {
		if p.ID == minID {
			t.Fatalf("removed %s, the smallest id of equal times", p.ID)
		}
	}
}
