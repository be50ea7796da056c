package api

import (
	"fmt"
	"strings"
	"testing"
)

func FuzzParseDevicesCSV(f *testing.F) {
	f.Add([]byte("id,password,identifier,group,tag\nhome1,s,mqtt://home1,g,zone=North\n"))
	f.Add([]byte("id\n\"a\nb\"\n"))
	f.Add([]byte("tag,id\n\"zone=\"\"x\"\"\",a\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		nds, err := ParseDevicesCSV(b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "CSV") {
				t.Fatalf("error without its format: %v", err)
			}
			return
		}
		for _, nd := range nds {
			if nd.ID == "" {
				t.Fatal("a device without an id was accepted")
			}
		}
	})
}

func FuzzParseDevicesYAML(f *testing.F) {
	f.Add([]byte("- id: a\n  tag: zone=North\n"))
	f.Add([]byte("devices:\n  - id: b\n    tag: {zone: South}\n"))
	f.Add([]byte("- id: c\n  tag: [{key: zone, value: x}]\n"))
	f.Add([]byte("- &a {id: x}\n- *a\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		nds, err := ParseDevicesYAML(b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "YAML") {
				t.Fatalf("error without its format: %v", err)
			}
			return
		}
		for _, nd := range nds {
			if nd.ID == "" {
				t.Fatal("a device without an id was accepted")
			}
		}
	})
}

func ExampleParseDevicesCSV() {
	devs, err := ParseDevicesCSV([]byte(`id,password,identifier,group,tag
home1-climate,,mqtt://home1-climate,new-homes,manufacturer=Acme Corp.; model=xyz; zone=South
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, d := range devs {
		zone, _ := d.Tag.Get("zone")
		fmt.Println(d.ID, d.Group, zone)
	}
	// Output: home1-climate new-homes South
}
