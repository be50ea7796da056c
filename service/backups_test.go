package service

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"

	"github.com/fleetvault/fleetvault/apiclient"
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
