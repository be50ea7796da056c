package schedule_test

import (
	"errors"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/schedule"
)

func TestCheckRPO(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	rpo := 24 * time.Hour
	tests := []struct {
		name string
		last time.Time // zero: never
		age  time.Duration
		met  bool
	}{
		{"fresh", now.Add(-time.Hour), time.Hour, true},
		{"exactly at the objective", now.Add(-rpo), rpo, true},
		{"a second late", now.Add(-rpo - time.Second), rpo + time.Second, false},
		{"a week old", now.Add(-7 * 24 * time.Hour), 7 * 24 * time.Hour, false},
		{"never backed up", time.Time{}, 0, false},
		{"in the future (clock skew)", now.Add(time.Hour), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			last := map[string]time.Time{}
			if !tt.last.IsZero() {
				last["d"] = tt.last
			}
			got, err := schedule.CheckRPO(rpo, now, []string{"d"}, last)
			if err != nil {
				t.Fatal(err)
			}
			want := schedule.RPOStatus{Device: "d", RPO: rpo, LastSuccess: tt.last, Age: tt.age, Met: tt.met}
			if len(got) != 1 || got[0] != want {
				t.Fatalf("CheckRPO = %+v, want %+v", got, want)
			}
			if s := got[0].State(); (s == "met") != tt.met {
				t.Fatalf("State() = %q", s)
			}
		})
	}
	t.Run("sorted by device", func(t *testing.T) {
		got, err := schedule.CheckRPO(rpo, now, []string{"b", "a"}, map[string]time.Time{"a": now, "b": now})
		if err != nil || len(got) != 2 || got[0].Device != "a" || got[1].Device != "b" {
			t.Fatalf("CheckRPO = %+v, %v", got, err)
		}
	})
	t.Run("non-positive RPO", func(t *testing.T) {
		if _, err := schedule.CheckRPO(0, now, []string{"a"}, nil); !errors.Is(err, schedule.ErrInvalid) {
			t.Fatalf("CheckRPO(0) = %v", err)
		}
	})
}
