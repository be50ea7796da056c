package main

import (
	"encoding/json"
	"testing"

	"github.com/fleetvault/fleetvault/devicesim/simbench"
)

func TestBenchTransports(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"mqtt", []string{"bench", "mqtt", "--in-process-broker"}},
		{"coap", []string{"bench", "coap"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(tt.args, "--devices", "20", "--duration", "300ms", "--warmup", "100ms", "--concurrency", "4", "--json", "--log-level", "error")
			code, out, errs := simCLI(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			var res simbench.Result
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("output %q: %v", out, err)
			}
			if res.Devices != 20 || res.Requests == 0 || res.CeilingRTPerSec <= 0 || res.Ratio <= 0 || res.RSSMB <= 0 {
				t.Errorf("result %+v", res)
			}
		})
	}
	if code, _, _ := simCLI(t, "bench", "mqtt", "--devices", "0"); code != exitUsage {
		t.Errorf("--devices 0: exit %d, want %d", code, exitUsage)
	}
}
