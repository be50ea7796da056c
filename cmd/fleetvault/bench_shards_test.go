package main

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"testing"

	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/scenario"
)

// TestBenchRestoreShards runs a group restore of a small fleet spread over
// broker shard processes, as bench restore --shards does for 100,000
// devices, and checks every device's ground truth: three fleetvault broker
// shards, and one Mosquitto shard (mosquitto is installed by make test).
func TestBenchRestoreShards(t *testing.T) {
	for _, tc := range []struct {
		kind   string
		shards int
	}{
		{scenario.ShardEmbedded, 3},
		{scenario.ShardMosquitto, 1},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			if tc.kind == scenario.ShardMosquitto {
				if _, err := exec.LookPath("mosquitto"); err != nil {
					t.Skip("mosquitto is not installed (make test installs it)")
				}
			}
			cmd := exec.Command(e2eFleetvault(t), "bench", "restore", "--devices", "300", "--transport", "mqtt",
				"--shards", strconv.Itoa(tc.shards), "--shard-kind", tc.kind, "--concurrency", "64", "--json", "--log-level", "warn")
			stderr := &e2eBuffer{}
			cmd.Stderr = stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("bench restore: %v\n%s", err, stderr)
			}
			var res scenario.BenchResult
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatalf("output %q: %v", out, err)
			}
			if res.Devices != 300 || res.Counts[grouprestore.Restored] != 300 || res.Mismatches != 0 {
				t.Errorf("devices %d, counts %v, mismatches %d; want 300 restored, no mismatch", res.Devices, res.Counts, res.Mismatches)
			}
			if res.Shards != tc.shards || res.ShardKind != tc.kind || res.ShardRSSMB <= 0 || res.FleetProcesses < tc.shards {
				t.Errorf("shards %d (%s, %.0f MiB) over %d fleet processes; want %d %s shards with their memory", res.Shards, res.ShardKind, res.ShardRSSMB, res.FleetProcesses, tc.shards, tc.kind)
			}
		})
	}
}
