package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
		code   int
		output string
	}{
		{"clean", func(*testing.T, string) {}, 0, "no problems found"},
		{"truncated catalog", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "catalog.db")
			// Past the meta pages, short of the pages in use.
			if err := os.Truncate(p, int64(3*os.Getpagesize())); err != nil {
				t.Fatal(err)
			}
		}, exitError, "truncated"},
		{"missing resource database", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "resources.db")); err != nil {
				t.Fatal(err)
			}
		}, exitError, "resources.db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mbr := initInstall(t)
			addPieces(t, mbr)
			tt.damage(t, filepath.Dir(mbr))
			code, out, errs := runFV(t, "check", "--read-data", "--mbr", mbr)
			if code != tt.code || !strings.Contains(out+errs, tt.output) {
				t.Fatalf("exit %d (want %d), output %q %q, want %q", code, tt.code, out, errs, tt.output)
			}
		})
	}
	t.Run("no mbr", func(t *testing.T) {
		t.Setenv("FLEETVAULT_MBR", "")
		if code, _, errs := runFV(t, "check"); code != exitUsage || !strings.Contains(errs, "--mbr") {
			t.Fatalf("exit %d, %q", code, errs)
		}
	})
}
