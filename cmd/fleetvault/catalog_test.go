package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// addPieces puts 3 clients x 4 daily backups into an installation.
func addPieces(t *testing.T, mbr string) {
	t.Helper()
	c, err := catalog.Open(mbr, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var ps []catalog.NewPiece
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := 1; i <= 3; i++ {
		for d := 0; d < 4; d++ {
			ps = append(ps, catalog.NewPiece{Client: fmt.Sprintf("home%d", i), Name: "settings", Group: "North Device Backup",
				Time: t0.AddDate(0, 0, d), Tag: tagmatch.Tag{{Key: "zone", Value: "North"}, {Key: "model", Value: fmt.Sprint("T", i)}},
				Content: []byte(fmt.Sprintf("settings %d %d", i, d))})
		}
	}
	if _, err := c.Ingest(context.Background(), ps); err != nil {
		t.Fatal(err)
	}
}

func TestCatalogList(t *testing.T) {
	mbr := initInstall(t)
	addPieces(t, mbr)
	tests := []struct {
		name  string
		args  []string
		count int
		code  int
	}{
		{"all", nil, 12, 0},
		{"client", []string{"--client", "home2"}, 4, 0},
		{"tag", []string{"--tag", "model=T3"}, 4, 0},
		{"since", []string{"--since", "2026-03-03T00:00:00Z"}, 6, 0},
		{"limit", []string{"--limit", "5"}, 5, 0},
		{"bad tag", []string{"--tag", "model"}, 0, exitUsage},
		{"bad time", []string{"--since", "yesterday"}, 0, exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runFV(t, append([]string{"catalog", "list", "--json", "--mbr", mbr}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, errs)
			}
			if code != 0 {
				return
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != tt.count {
				t.Fatalf("%d pieces, want %d:\n%s", len(lines), tt.count, out)
			}
			var p catalog.Piece
			if err := json.Unmarshal([]byte(lines[0]), &p); err != nil || p.ID == "" {
				t.Fatalf("bad JSON line %q: %v", lines[0], err)
			}
		})
	}
}

func TestCatalogPrune(t *testing.T) {
	mbr := initInstall(t)
	addPieces(t, mbr)
	code, out, errs := runFV(t, "catalog", "prune", "--dry-run", "--client", "home1", "--keep-last", "1", "--mbr", mbr)
	if code != 0 || !strings.Contains(out, "would remove 3 piece(s)") {
		t.Fatalf("dry run: %d %q %q", code, out, errs)
	}
	code, out, errs = runFV(t, "catalog", "prune", "--group", "North Device Backup", "--keep-last", "2", "--save", "--mbr", mbr)
	if code != 0 || !strings.Contains(out, "removed 6 piece(s), kept 6") {
		t.Fatalf("prune: %d %q %q", code, out, errs)
	}
	// The saved rule applies on the next run: nothing more to do.
	code, out, _ = runFV(t, "catalog", "prune", "--mbr", mbr)
	if code != 0 || !strings.Contains(out, "removed 0 piece(s), kept 6") {
		t.Fatalf("second prune: %d %q", code, out)
	}
	if code, out, errs := runFV(t, "check", "--read-data", "--mbr", mbr); code != 0 {
		t.Fatalf("check after prune: %s %s", out, errs)
	}
}

func TestCatalogExportImport(t *testing.T) {
	pass, wrong := passFile(t, "export passphrase"), passFile(t, "not the export passphrase")
	tests := []struct {
		format  string
		encrypt bool
	}{{"sql", false}, {"json", false}, {"sql", true}, {"json", true}}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s encrypted=%v", tt.format, tt.encrypt), func(t *testing.T) {
			src := initInstall(t)
			addPieces(t, src)
			file := filepath.Join(t.TempDir(), "export."+tt.format)
			args := []string{"catalog", "export", "--format", tt.format, "--output", file, "--mbr", src}
			if tt.encrypt {
				args = append(args, "--encrypt", "--export-password-file", pass, "--kdf-memory-mib", "1") // cheap argon2id: tests run under -race
			}
			code, out, errs := runFV(t, args...)
			if code != 0 {
				t.Fatalf("export: %s %s", out, errs)
			}
			if warned := strings.Contains(errs, "IN CLEAR"); warned == tt.encrypt {
				t.Errorf("export warning on stderr: %v, want %v: %q", warned, !tt.encrypt, errs)
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("export file mode %v, want 0600 (%v)", st.Mode().Perm(), err)
			}
			if clear := bytes.Contains(data, []byte("IN CLEAR")); clear == tt.encrypt {
				t.Errorf("notice in the file: %v, want %v", clear, !tt.encrypt)
			}
			dst := initInstall(t)
			if tt.encrypt {
				if code, _, errs := runFV(t, "catalog", "import", "--format", tt.format, file, "--mbr", dst, "--export-password-file", wrong); code == 0 || !strings.Contains(errs, "wrong passphrase") {
					t.Fatalf("import with a wrong passphrase: %d %s", code, errs)
				}
			}
			if code, out, errs := runFV(t, "catalog", "import", "--format", tt.format, file, "--mbr", dst, "--export-password-file", pass); code != 0 {
				t.Fatalf("import: %s %s", out, errs)
			}
			_, a, _ := runFV(t, "catalog", "list", "--json", "--limit", "0", "--mbr", src)
			_, b, _ := runFV(t, "catalog", "list", "--json", "--limit", "0", "--mbr", dst)
			if a != b || strings.Count(a, "\n") != 12 {
				t.Fatalf("imported catalog differs:\n%s\n%s", a, b)
			}
		})
	}
}

func TestInstall(t *testing.T) {
	mbr := initInstall(t)
	addPieces(t, mbr)
	cfg := filepath.Join(t.TempDir(), "fleetvault.yaml")
	code, out, errs := runFV(t, "install", "--mbr", mbr, "--site-address", "10.50.4.1", "--write-config", cfg)
	if code != 0 || !strings.Contains(out, "12 pieces") || !strings.Contains(out, "DR mode") {
		t.Fatalf("install: %d %q %q", code, out, errs)
	}
	// Later commands find the installation through the written configuration.
	t.Setenv("FLEETVAULT_MBR", "")
	code, out, errs = runFV(t, "--config", cfg, "catalog", "list", "--client", "home1")
	if code != 0 || strings.Count(out, "home1") != 4 {
		t.Fatalf("list via config: %d %q %q", code, out, errs)
	}
}

func TestCatalogListFromEnv(t *testing.T) {
	mbr := initInstall(t)
	addPieces(t, mbr)
	t.Setenv("FLEETVAULT_MBR", mbr)
	code, out, errs := runFV(t, "catalog", "list", "--client", "home3")
	if code != 0 || strings.Count(out, "home3") != 4 {
		t.Fatalf("list with FLEETVAULT_MBR: %d %q %q", code, out, errs)
	}
}

func TestCatalogRestores(t *testing.T) {
	mbr := initInstall(t)
	c, err := catalog.Open(mbr, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = c.RecordRestores(context.Background(), []catalog.RestoreEvent{
		{Device: "home1", Job: "job-1", Outcome: catalog.OutcomeRestored},
		{Device: "home2", Job: "job-1", Outcome: catalog.OutcomeSkipped, Detail: "ambiguous: two candidates"},
	})
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs := runFV(t, "catalog", "restores", "--job", "job-1", "--mbr", mbr)
	if code != 0 || !strings.Contains(out, "ambiguous: two candidates") || !strings.Contains(out, "restored") {
		t.Fatalf("restores: %d %q %q", code, out, errs)
	}
}
