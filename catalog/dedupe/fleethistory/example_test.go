package fleethistory_test

import (
	"fmt"
	"log"

	"github.com/fleetvault/fleetvault/catalog/dedupe/fleethistory"
)

// Ten days of a 1000-device fleet where 1% of devices change a few settings
// daily: ten thousand backups, few distinct documents.
func Example() {
	h, err := fleethistory.New(fleethistory.Config{Devices: 1000, Days: 10, Change: 0.01})
	if err != nil {
		log.Fatal(err)
	}
	records, distinct := 0, map[string]bool{}
	for day := range h.Days() {
		err := h.Day(day, func(r fleethistory.Record) error {
			records++
			distinct[string(r.Settings)] = true
			return nil
		})
		if err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("%d records, %d distinct settings documents\n", records, len(distinct))
	// Output: 10000 records, 253 distinct settings documents
}
