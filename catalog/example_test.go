package catalog_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// Example creates an installation, records two backups of a reference
// device and finds what a group restore would match against.
func Example() {
	dir, err := os.MkdirTemp("", "fleetvault-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	mbr, err := catalog.Init(dir, catalog.InitOptions{Server: "10.10.11.1", DRServer: "10.50.4.1"})
	if err != nil {
		log.Fatal(err)
	}
	c, err := catalog.Open(mbr, catalog.Options{SiteAddress: "10.10.11.1"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	tag := tagmatch.Tag{{Key: tagmatch.KeyModel, Value: "T1"}, {Key: tagmatch.KeyZone, Value: "North"}}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	_, err = c.Ingest(context.Background(), []catalog.NewPiece{
		{Client: "model-house-north", Name: "settings", Group: "North Device Backup", Time: t0, Tag: tag, Content: []byte(`{"setpoint":21}`)},
		{Client: "model-house-north", Name: "settings", Group: "North Device Backup", Time: t0.Add(time.Hour), Tag: tag, Content: []byte(`{"setpoint":22}`)},
	})
	if err != nil {
		log.Fatal(err)
	}
	cands, err := c.Candidates("North Device Backup")
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range cands {
		data, err := c.Content(p.Ref)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s %s %s\n", p.Client, p.Time.Format(time.RFC3339), data)
	}
	fmt.Println("DR mode:", c.DRMode())
	// Output:
	// model-house-north 2026-03-01T13:00:00Z {"setpoint":22}
	// DR mode: false
}
