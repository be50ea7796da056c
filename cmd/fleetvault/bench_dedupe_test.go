package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBenchDedupe(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"catalog", []string{"--devices", "200", "--days", "3", "--batch", "250"}, exitOK, ""},
		{"store", []string{"--devices", "200", "--days", "3", "--mode", "store"}, exitOK, ""},
		{"bad mode", []string{"--mode", "tape"}, exitUsage, "--mode"},
		{"bad batch", []string{"--batch", "0"}, exitUsage, "--batch"},
		{"bad change", []string{"--change", "2"}, exitUsage, "change"},
		{"no devices", []string{"--devices", "0"}, exitUsage, "devices"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"bench", "dedupe", "--json", "--dir", t.TempDir()}, tt.args...)
			if code := run(args, &out, &errOut); code != tt.code || !strings.Contains(errOut.String(), tt.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut.String(), tt.code, tt.stderr)
			}
			if tt.code != exitOK {
				return
			}
			var res benchDedupeResult
			if err := json.Unmarshal(out.Bytes(), &res); err != nil {
				t.Fatalf("output %q: %v", out.String(), err)
			}
			if res.Records != 600 || res.RawBytes <= 0 || res.StoredBytes <= 0 || res.Ratio < 2 || res.FileBytes <= 0 {
				t.Fatalf("result %+v", res)
			}
			if res.InstallBytes < res.FileBytes || res.BytesPerRecord != float64(res.FileBytes)/600 {
				t.Fatalf("installation %d bytes, file %d bytes, %.1f bytes per record", res.InstallBytes, res.FileBytes, res.BytesPerRecord)
			}
		})
	}
}

func TestBenchDedupeWriteFiles(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if code := run([]string{"bench", "dedupe", "--devices", "20", "--days", "2", "--write-files", dir}, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "day-*", "dev-*.cbor"))
	if len(files) != 40 {
		t.Fatalf("%d files written, want 40", len(files))
	}
	if b, err := os.ReadFile(files[0]); err != nil || len(b) == 0 {
		t.Fatalf("%s: %d bytes, %v", files[0], len(b), err)
	}
}
