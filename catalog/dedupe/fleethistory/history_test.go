package fleethistory

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"github.com/fleetvault/fleetvault/agent"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no devices", Config{Days: 1}},
		{"no days", Config{Devices: 1}},
		{"change over 1", Config{Devices: 1, Days: 1, Change: 1.5}},
		{"negative change", Config{Devices: 1, Days: 1, Change: -0.1}},
		{"custom over 1", Config{Devices: 1, Days: 1, Custom: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// run generates a whole history and returns each record's settings hash.
func run(t *testing.T, cfg Config) (hashes [][32]byte, records []Record) {
	t.Helper()
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for d := range h.Days() {
		err := h.Day(d, func(r Record) error {
			hashes = append(hashes, sha256.Sum256(r.Settings))
			records = append(records, r)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return hashes, records
}

func TestHistory(t *testing.T) {
	cfg := Config{Devices: 2000, Days: 5, Change: 0.01}
	a, recs := run(t, cfg)
	b, _ := run(t, cfg)
	if len(a) != 2000*5 {
		t.Fatalf("%d records, want %d", len(a), 2000*5)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("record %d differs between two runs of the same config", i)
		}
	}
	t.Run("documents are settings of realistic size", func(t *testing.T) {
		minLen, maxLen := 1<<30, 0
		for _, r := range recs[:2000] {
			minLen, maxLen = min(minLen, len(r.Settings)), max(maxLen, len(r.Settings))
			if _, err := agent.DecodeSettings(r.Settings); err != nil {
				t.Fatalf("%s: %v", r.Device, err)
			}
		}
		if minLen < 200 || maxLen > 16<<10 || maxLen < 2<<10 {
			t.Fatalf("sizes %d-%d bytes, want a few hundred bytes to a few KiB", minLen, maxLen)
		}
	})
	t.Run("about 1% of devices change each day", func(t *testing.T) {
		for d := 1; d < 5; d++ {
			changed := 0
			for i := range 2000 {
				if a[d*2000+i] != a[(d-1)*2000+i] {
					changed++
				}
			}
			if changed < 10 || changed > 20 {
				t.Fatalf("day %d: %d devices changed, want about 20", d, changed)
			}
		}
	})
	t.Run("most devices share their profile's settings", func(t *testing.T) {
		distinct := map[[32]byte]bool{}
		for _, h := range a[:2000] {
			distinct[h] = true
		}
		if len(distinct) < 80 || len(distinct) > 400 {
			t.Fatalf("%d distinct documents among 2000 devices on day 0", len(distinct))
		}
	})
	t.Run("days in order only", func(t *testing.T) {
		h, _ := New(cfg)
		if err := h.Day(1, func(Record) error { return nil }); err == nil {
			t.Fatal("day 1 before day 0 accepted")
		}
	})
}

func TestWriteFiles(t *testing.T) {
	cfg := Config{Devices: 50, Days: 3, Change: 0.1}
	dir := t.TempDir()
	h, _ := New(cfg)
	files, n, err := h.WriteFiles(dir)
	if err != nil || files != 150 || n == 0 {
		t.Fatalf("WriteFiles: %d files, %d bytes, %v", files, n, err)
	}
	_, recs := run(t, cfg)
	for _, r := range recs {
		b, err := os.ReadFile(filepath.Join(DayDir(dir, r.Day), r.Device+".cbor"))
		if err != nil || !bytes.Equal(b, r.Settings) {
			t.Fatalf("%s day %d: file differs from the generated record (%v)", r.Device, r.Day, err)
		}
	}
}
