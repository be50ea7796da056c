package catalog

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestRecordHistory(t *testing.T) {
	c := newTestCatalog(t)
	d1, d2, d3 := "2026-01-01", "2026-01-02", "2026-01-03"
	if err := c.RecordHistory([]HistoryRecord{
		{Day: d1, Kind: HistoryBackup, Device: "a", Attempts: 1, Successes: 1, Bytes: 100},
		{Day: d1, Kind: HistoryBackup, Device: "a", Attempts: 1, Failures: 1},
		{Day: d2, Kind: HistoryRestore, Device: "a", Attempts: 1, Successes: 1, RestoreMSSum: 300, RestoreMSMax: 300},
		{Day: d2, Kind: HistoryRestore, Device: "a", Attempts: 1, Successes: 1, RestoreMSSum: 700, RestoreMSMax: 700},
		{Day: d3, Kind: HistoryBackup, Device: "b", RPOMisses: 1},
	}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		since, until string
		want         []HistoryRecord
	}{
		{"all", "", "", []HistoryRecord{
			{Day: d1, Kind: HistoryBackup, Device: "a", Attempts: 2, Successes: 1, Failures: 1, Bytes: 100},
			{Day: d2, Kind: HistoryRestore, Device: "a", Attempts: 2, Successes: 2, RestoreMSSum: 1000, RestoreMSMax: 700},
			{Day: d3, Kind: HistoryBackup, Device: "b", RPOMisses: 1}}},
		{"one day", d2, d2, []HistoryRecord{{Day: d2, Kind: HistoryRestore, Device: "a", Attempts: 2, Successes: 2, RestoreMSSum: 1000, RestoreMSMax: 700}}},
		{"from the second", d2, "", []HistoryRecord{
			{Day: d2, Kind: HistoryRestore, Device: "a", Attempts: 2, Successes: 2, RestoreMSSum: 1000, RestoreMSMax: 700},
			{Day: d3, Kind: HistoryBackup, Device: "b", RPOMisses: 1}}},
	}
	day := func(s string) time.Time {
		if s == "" {
			return time.Time{}
		}
		d, _ := time.Parse(DayLayout, s)
		return d.Add(13 * time.Hour) // any time of the day selects it
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []HistoryRecord
			if err := c.History(day(tt.since), day(tt.until), func(h HistoryRecord) error { got = append(got, h); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("record %d: %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
	var totals []HistoryRecord
	if err := c.HistoryTotals(time.Time{}, time.Time{}, func(h HistoryRecord) error { totals = append(totals, h); return nil }); err != nil {
		t.Fatal(err)
	}
	wantTotals := []HistoryRecord{tests[0].want[0], tests[0].want[1], tests[0].want[2]}
	for i := range wantTotals {
		wantTotals[i].Device = ""
	}
	if len(totals) != 3 || totals[0] != wantTotals[0] || totals[1] != wantTotals[1] || totals[2] != wantTotals[2] {
		t.Fatalf("day totals %+v, want %+v", totals, wantTotals)
	}
	var only []HistoryRecord
	_ = c.HistoryOf(time.Time{}, time.Time{}, map[string]bool{"b": true}, func(h HistoryRecord) error { only = append(only, h); return nil })
	if len(only) != 1 || only[0].Device != "b" {
		t.Fatalf("HistoryOf b: %+v", only)
	}
	n, err := c.PruneHistory(day(d2))
	if err != nil || n != 1 {
		t.Fatalf("prune: %d, %v", n, err)
	}
	left := 0
	_ = c.History(time.Time{}, time.Time{}, func(HistoryRecord) error { left++; return nil })
	if left != 2 {
		t.Fatalf("%d records after pruning, want 2", left)
	}
}

func TestRecordHistoryInvalid(t *testing.T) {
	c := newTestCatalog(t)
	for name, h := range map[string]HistoryRecord{
		"bad day":        {Day: "2026-13-01", Kind: HistoryBackup, Device: "a"},
		"bad kind":       {Day: "2026-01-01", Kind: "undo", Device: "a"},
		"no device":      {Day: "2026-01-01", Kind: HistoryBackup},
		"negative count": {Day: "2026-01-01", Kind: HistoryBackup, Device: "a", Attempts: -1},
	} {
		t.Run(name, func(t *testing.T) {
			if err := c.RecordHistory([]HistoryRecord{{Day: "2026-01-01", Kind: HistoryBackup, Device: "ok", Attempts: 1}, h}); !errors.Is(err, ErrInvalid) {
				t.Fatalf("RecordHistory = %v", err)
			}
			n := 0
			_ = c.History(time.Time{}, time.Time{}, func(HistoryRecord) error { n++; return nil })
			if n != 0 {
				t.Fatalf("a refused batch wrote %d records", n)
			}
		})
	}
}

func TestHistoryRetention(t *testing.T) {
	c := newTestCatalog(t)
	if d, err := c.HistoryRetention(); err != nil || d != DefaultHistoryRetention {
		t.Fatalf("default: %d, %v", d, err)
	}
	if err := c.SetHistoryRetention(0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("0 days: %v", err)
	}
	if err := c.SetHistoryRetention(30); err != nil {
		t.Fatal(err)
	}
	if d, err := c.HistoryRetention(); err != nil || d != 30 {
		t.Fatalf("after set: %d, %v", d, err)
	}
}

// FuzzHistoryQuickDecode: whatever quickDecode accepts, encoding/json reads
// the same.
func FuzzHistoryQuickDecode(f *testing.F) {
	for _, h := range []HistoryRecord{
		{Day: "2026-01-01", Kind: HistoryBackup, Device: "a", Attempts: 2, Successes: 1, Failures: 1, Bytes: 100},
		{Day: "2026-01-02", Kind: HistoryRestore, Device: "home 7", Attempts: 1, RestoreMSSum: 1234, RestoreMSMax: 1234, RPOMisses: 3},
	} {
		b, _ := json.Marshal(h)
		f.Add(b)
	}
	f.Add([]byte(`{"day":"x","attempts":01}`))
	f.Add([]byte(`{"device":"a\"b"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var q HistoryRecord
		if !q.quickDecode(b) {
			return
		}
		var j HistoryRecord
		if err := json.Unmarshal(b, &j); err != nil || j != q {
			t.Fatalf("%s: quick %+v, json %+v (%v)", b, q, j, err)
		}
	})
}

func TestHistoryQuickDecodeRoundTrip(t *testing.T) {
	for _, h := range []HistoryRecord{
		{Day: "2026-01-01", Kind: HistoryBackup, Device: "a", Attempts: 2, Successes: 1, Failures: 1, Bytes: 100},
		{Day: "2026-01-02", Kind: HistoryRestore, Device: "home 7", Attempts: 1, RestoreMSSum: 1234, RestoreMSMax: 1234, RPOMisses: 3},
		{Day: "2026-01-03", Kind: HistoryBackup, Device: "zéro"}, // not ASCII: encoding/json's turn
	} {
		b, _ := json.Marshal(h)
		var q HistoryRecord
		ok := q.quickDecode(b)
		if ok != (h.Device != "zéro") || (ok && q != h) {
			t.Fatalf("%s: quick %v %+v", b, ok, q)
		}
	}
}
