package api

import (
	"github.com/fleetvault/fleetvault/apiclient"

	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestDiffValues(t *testing.T) {
	a := map[string]any{"setpoint": 21.5, "fan": map[string]any{"mode": "auto", "speed": uint64(2)}, "list": []any{1, 2}, "a/b": "x"}
	b := map[string]any{"setpoint": 24.5, "fan": map[string]any{"mode": "auto"}, "list": []any{1, 2}, "eco": true, "a/b": "y"}
	var d apiclient.Diff
	diffValues("", jsonValue(a), jsonValue(b), &d)
	got := fmt.Sprintf("%v|%v|%v", d.Added, d.Removed, d.Changed)
	want := "[{/eco <nil> true}]|[{/fan/speed 2 <nil>}]|[{/a~1b x y} {/setpoint 21.5 24.5}]"
	if got != want {
		t.Fatalf("diff\n got %s\nwant %s", got, want)
	}
	var same apiclient.Diff
	diffValues("", jsonValue(a), jsonValue(a), &same)
	if len(same.Added)+len(same.Removed)+len(same.Changed) != 0 {
		t.Fatalf("self diff %+v", same)
	}
	var root apiclient.Diff
	diffValues("", "x", map[string]any{}, &root)
	if len(root.Changed) != 1 || root.Changed[0].Path != "" {
		t.Fatalf("root change %+v", root)
	}
}

func TestJSONValue(t *testing.T) {
	in := map[string]any{
		"bytes": []byte{1, 2, 3},
		"nan":   math.NaN(),
		"inf":   math.Inf(1),
		"m":     map[any]any{uint64(1): "one", "two": []any{float32(2.5)}},
	}
	b, err := json.Marshal(jsonValue(in))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"bytes":"AQID","inf":"+Inf","m":{"1":"one","two":[2.5]},"nan":"NaN"}`
	if string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
}

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
