package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fleetvault/fleetvault/grouprestore"
)

func TestDemoReportsZeroMismatches(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"demo", "--homes", "25", "--json", "--offline-ttl", "2s", "--timeout", "1s"}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var rep demoReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out.String())
	}
	if rep.Mismatches != 0 || rep.Devices == 0 || rep.Counts[grouprestore.Restored] == 0 || rep.Seconds <= 0 {
		t.Fatalf("report %+v", rep)
	}
	total := 0
	for _, n := range rep.Counts {
		total += n
	}
	if total != rep.Devices {
		t.Fatalf("counts %v add up to %d, not the %d devices", rep.Counts, total, rep.Devices)
	}
}

func TestDemoRefusesBadFlags(t *testing.T) {
	for name, args := range map[string][]string{
		"no homes":      {"demo", "--homes", "0"},
		"unknown fleet": {"demo", "--fleet", "no-such-fleet"},
	} {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(args, &out, &errb); code == exitOK || !strings.Contains(errb.String(), "fleetvault:") {
				t.Fatalf("exit %d, stderr %q", code, errb.String())
			}
		})
	}
}
