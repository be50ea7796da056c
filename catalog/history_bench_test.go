package catalog

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkHistoryScan reads a year of history of 1,000 devices (365,000
// records) through History: the cost per record of GET /api/v1/stats.
func BenchmarkHistoryScan(b *testing.B) {
	c := newTestCatalog(b)
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for day := range 365 {
		recs := make([]HistoryRecord, 1000)
		for i := range recs {
			recs[i] = HistoryRecord{Day: start.AddDate(0, 0, day).Format(DayLayout), Kind: HistoryBackup,
				Device: fmt.Sprintf("home%05d", i), Attempts: 1, Successes: 1, Bytes: int64(1000 + i)}
		}
		if err := c.RecordHistory(recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		n := 0
		if err := c.History(time.Time{}, time.Time{}, func(HistoryRecord) error { n++; return nil }); err != nil || n != 365000 {
			b.Fatal(n, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/365000, "ns/record")
}
