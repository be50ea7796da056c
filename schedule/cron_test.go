package schedule_test

import (
	"errors"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/schedule"
)

func TestParse(t *testing.T) {
	from := time.Date(2026, 3, 2, 10, 7, 0, 0, time.UTC)
	tests := []struct {
		expr string
		next time.Time
	}{
		{"*/15 * * * *", time.Date(2026, 3, 2, 10, 15, 0, 0, time.UTC)},
		{"0 3 * * *", time.Date(2026, 3, 3, 3, 0, 0, 0, time.UTC)},
		{"30 2 * * MON", time.Date(2026, 3, 9, 2, 30, 0, 0, time.UTC)},
		{"0 0 1 JAN *", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"@daily", time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)},
		{"@hourly", time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC)},
		{"CRON_TZ=Europe/Paris 0 3 * * *", time.Date(2026, 3, 3, 2, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			c, err := schedule.Parse(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Next(from); !got.Equal(tt.next) {
				t.Fatalf("Next(%v) = %v, want %v", from, got, tt.next)
			}
			if c.String() != tt.expr {
				t.Fatalf("String() = %q", c.String())
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		expr  string
		field string
	}{
		{"", ""},
		{"* * *", ""},
		{"* * * * * *", ""},
		{"61 * * * *", "minute"},
		{"* 24 * * *", "hour"},
		{"* * 0 * *", "day of month"},
		{"* * * 13 *", "month"},
		{"* * * * FUNDAY", "day of week"},
		{"*/0 * * * *", "minute"},
		{"@fortnightly", ""},
		{"0 0 30 2 *", ""},
		{"CRON_TZ=Mars/Olympus 0 3 * * *", ""},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			_, err := schedule.Parse(tt.expr)
			var pe *schedule.ParseError
			if !errors.As(err, &pe) || !errors.Is(err, schedule.ErrInvalid) {
				t.Fatalf("Parse(%q) = %v, want a ParseError", tt.expr, err)
			}
			if pe.Field != tt.field || pe.Expr != tt.expr {
				t.Fatalf("field %q expr %q, want field %q (%v)", pe.Field, pe.Expr, tt.field, err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"*/15 * * * *", "0 3 * * *", "@daily", "1-5/2 0,12 * JAN-MAR MON-FRI", "CRON_TZ=UTC @every 1h"} {
		f.Add(s)
	}
	from := time.Date(2026, 3, 2, 10, 7, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, expr string) {
		c, err := schedule.Parse(expr)
		if err != nil {
			var pe *schedule.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error is not a ParseError: %v", err)
			}
			return
		}
		if n := c.Next(from); !n.After(from) {
			t.Fatalf("Next(%v) = %v, not after", from, n)
		}
	})
}
