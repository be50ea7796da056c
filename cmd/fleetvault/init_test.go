package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// runFV runs fleetvault with args and returns its exit code and output.
func runFV(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// runCLI is runFV under the name other commands' tests use.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runFV(t, args...)
}

// initInstall creates an installation with fleetvault init and returns its MBR.
func initInstall(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "fv")
	code, out, errs := runFV(t, "init", "--dir", dir, "--server", "10.10.11.1", "--dr-server", "10.50.4.1", "--insecure-no-encryption")
	if code != 0 {
		t.Fatalf("init: %d %s %s", code, out, errs)
	}
	return filepath.Join(dir, "fleetvault.mbr")
}

func TestInit(t *testing.T) {
	tests := []struct {
		name   string
		args   func(dir string) []string
		code   int
		output string
	}{
		{"creates", func(d string) []string { return []string{"init", "--dir", d, "--insecure-no-encryption"} }, 0, "master backup record"},
		{"needs dir", func(string) []string { return []string{"init"} }, exitUsage, "--dir is required"},
		{"refuses existing", func(d string) []string { return []string{"init", "--dir", filepath.Dir(initInstall(t))} }, exitError, "already exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runFV(t, tt.args(t.TempDir())...)
			if code != tt.code || !strings.Contains(out+errs, tt.output) {
				t.Fatalf("exit %d (want %d), output %q %q, want %q", code, tt.code, out, errs, tt.output)
			}
		})
	}
}
