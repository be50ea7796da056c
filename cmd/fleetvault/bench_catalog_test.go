package main

import (
	"encoding/json"
	"testing"
)

func TestBenchCatalog(t *testing.T) {
	code, out, errs := runFV(t, "bench", "catalog", "--records", "3000", "--batch", "1000", "--queries", "20", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var res struct {
		Records int
		Latest  struct {
			P99 float64 `json:"p99_us"`
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Records != 3000 || res.Latest.P99 <= 0 {
		t.Fatalf("output %q: %v", out, err)
	}
	if code, _, _ := runFV(t, "bench", "catalog", "--records", "0"); code != exitUsage {
		t.Fatalf("--records 0: exit %d, want %d", code, exitUsage)
	}
}
