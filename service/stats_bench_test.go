package service

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
)

// BenchmarkStatsYear: GET /api/v1/stats over a year of history of 10,000
// devices (3.65 million records: one backup record per device per day),
// for an admin (every device) and for an owner (half of them). Building the
// history takes minutes; run it with
//
//	go test ./service -run '^$' -bench BenchmarkStatsYear -benchtime 3x -timeout 60m
func BenchmarkStatsYear(b *testing.B) {
	svc, _, _ := benchService(b)
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	built := time.Now()
	for day := range 365 {
		recs := make([]catalog.HistoryRecord, 10000)
		for i := range recs {
			recs[i] = catalog.HistoryRecord{Day: start.AddDate(0, 0, day).Format(catalog.DayLayout), Kind: catalog.HistoryBackup,
				Device: fmt.Sprintf("home%05d", i), Attempts: 1, Successes: 1 - (i+day)%7/6, Bytes: int64(1000 + i%500)}
			recs[i].Failures = 1 - recs[i].Successes
		}
		if err := svc.cat.RecordHistory(recs); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("history of 10,000 devices x 365 days written in %v", time.Since(built).Round(time.Second))
	for _, c := range []struct {
		name string
		id   Identity
	}{{"admin", Identity{User: "root", Role: RoleAdmin}}, {"owner", Identity{User: "alice", Role: RoleOwner}}} {
		b.Run(c.name, func(b *testing.B) {
			ss := svc.As(c.id)
			for b.Loop() {
				st, err := ss.Stats(context.Background(), apiclient.StatsQuery{})
				if err != nil || len(st.Days) != 365 {
					b.Fatalf("%d days, %v", len(st.Days), err)
				}
			}
		})
	}
}
