package fleethistory_test

import (
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/fleetvault/fleetvault/catalog/dedupe"
	"github.com/fleetvault/fleetvault/catalog/dedupe/fleethistory"
)

// BenchmarkStoreFleetDay stores one day of a 10,000-device fleet's backups
// (after a first day already stored) in the dedupe store, 5,000 per
// transaction: the store's part of `fleetvault bench dedupe`.
func BenchmarkStoreFleetDay(b *testing.B) {
	const devices = 10000
	h, err := fleethistory.New(fleethistory.Config{Devices: devices, Days: 2, Change: 0.01})
	if err != nil {
		b.Fatal(err)
	}
	var days [2][][]byte
	for d := range 2 {
		if err := h.Day(d, func(r fleethistory.Record) error {
			days[d] = append(days[d], r.Settings)
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	db, err := bbolt.Open(filepath.Join(b.TempDir(), "store.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s := dedupe.New(dedupe.Options{})
	putAll := func(docs [][]byte) {
		for start := 0; start < len(docs); start += 5000 {
			err := db.Update(func(tx *bbolt.Tx) error {
				for _, doc := range docs[start:min(start+5000, len(docs))] {
					if _, _, err := s.Put(tx, doc); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := db.Update(s.Init); err != nil {
		b.Fatal(err)
	}
	putAll(days[0])
	b.ResetTimer()
	for b.Loop() {
		putAll(days[1])
	}
	b.ReportMetric(float64(b.N*devices)/b.Elapsed().Seconds(), "records/s")
}
