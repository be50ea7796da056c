package main

import (
	"bytes"
	"crypto/sha256"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// passFile writes a passphrase file and returns its path.
func passFile(t *testing.T, pass string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(p, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// dirDigest hashes every file of dir, to show that nothing changed.
func dirDigest(t *testing.T, dir string) [32]byte {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		h.Write([]byte(p))
		h.Write(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

var keyIDRE = regexp.MustCompile(`(?m)^([0-9a-f]{16})\s`)

// The key tests make key files with --kdf-memory-mib 1 (argon2id is slow
// under -race); the default parameters are exercised by the end-to-end
// tests, whose installations init encrypts with them.
func TestKeyCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fv")
	mbr := filepath.Join(dir, "fleetvault.mbr")
	p1, p2, p3, wrong := passFile(t, "correct horse one"), passFile(t, "battery staple two"), passFile(t, "third passphrase"), passFile(t, "not it")
	fv := func(want int, wantOut string, args ...string) string {
		t.Helper()
		code, out, errs := fvRun(t, append(args, "--mbr", mbr)...)
		if code != want || !strings.Contains(out+errs, wantOut) {
			t.Fatalf("%v: exit %d (want %d), output %q %q, want %q", args, code, want, out, errs, wantOut)
		}
		return out
	}
	if code, out, errs := fvRun(t, "init", "--dir", dir); code != exitUsage || !strings.Contains(errs, "--insecure-no-encryption") {
		t.Fatalf("init with no passphrase: exit %d, %q %q", code, out, errs)
	}
	if code, out, errs := fvRun(t, "init", "--dir", dir, "--password-file", p1, "--kdf-memory-mib", "1"); code != exitOK || !strings.Contains(out, "encrypted") {
		t.Fatalf("init: exit %d, %q %q", code, out, errs)
	}
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"no passphrase", func(t *testing.T) { fv(exitUsage, "give its passphrase", "check") }},
		{"wrong passphrase changes nothing", func(t *testing.T) {
			before := dirDigest(t, dir)
			fv(exitError, "wrong passphrase", "check", "--password-file", wrong)
			fv(exitError, "wrong passphrase", "key", "add", "--password-file", wrong, "--new-password-file", p2, "--kdf-memory-mib", "1")
			if dirDigest(t, dir) != before {
				t.Fatal("a wrong passphrase changed the installation")
			}
		}},
		{"right passphrase", func(t *testing.T) { fv(exitOK, "no problems found", "check", "--password-file", p1) }},
		{"passphrase from the environment", func(t *testing.T) {
			t.Setenv("FLEETVAULT_PASSWORD", "correct horse one")
			fv(exitOK, "no problems found", "check")
		}},
		{"add", func(t *testing.T) {
			fv(exitOK, "added key file", "key", "add", "--password-file", p1, "--new-password-file", p2, "--kdf-memory-mib", "1")
			if ids := keyIDRE.FindAllString(fv(exitOK, "ID", "key", "list"), -1); len(ids) != 2 {
				t.Fatalf("key list shows %d keys, want 2", len(ids))
			}
			fv(exitOK, "no problems found", "check", "--password-file", p2)
		}},
		{"passwd", func(t *testing.T) {
			fv(exitOK, "changed the passphrase", "key", "passwd", "--password-file", p2, "--new-password-file", p3, "--kdf-memory-mib", "1")
			fv(exitError, "wrong passphrase", "check", "--password-file", p2)
			fv(exitOK, "no problems found", "check", "--password-file", p3)
		}},
		{"remove", func(t *testing.T) {
			ids := keyIDRE.FindAllStringSubmatch(fv(exitOK, "ID", "key", "list"), -1)
			if len(ids) != 2 {
				t.Fatalf("%d keys, want 2", len(ids))
			}
			var first string // the key file of p1: the one p3 does not open
			for _, id := range ids {
				code, _, _ := fvRun(t, "key", "remove", id[1], "--mbr", mbr, "--password-file", p3)
				if code == exitOK {
					first = id[1]
				}
			}
			if first == "" {
				t.Fatal("no key file removed")
			}
			fv(exitError, "wrong passphrase", "check", "--password-file", p1)
			fv(exitOK, "no problems found", "check", "--password-file", p3)
		}},
		{"rotate", func(t *testing.T) {
			fv(exitOK, "rotated the repository key", "key", "rotate", "--password-file", p3, "--new-password-file", p1, "--kdf-memory-mib", "1")
			fv(exitError, "wrong passphrase", "check", "--password-file", p3)
			fv(exitOK, "no problems found", "check", "--password-file", p1, "--read-data")
		}},
	}
	for _, st := range steps {
		t.Run(st.name, st.run)
	}
}

func TestKeyInitEncryptsAnInstallationInClear(t *testing.T) {
	mbr := initInstall(t)
	pass := passFile(t, "a lab grows up")
	if code, out, errs := fvRun(t, "key", "init", "--mbr", mbr, "--new-password-file", pass, "--kdf-memory-mib", "1"); code != exitOK {
		t.Fatalf("key init: %d %q %q", code, out, errs)
	}
	if code, out, errs := fvRun(t, "check", "--mbr", mbr, "--read-data", "--password-file", pass); code != exitOK {
		t.Fatalf("check: %d %q %q", code, out, errs)
	}
	if code, _, errs := fvRun(t, "key", "init", "--mbr", mbr, "--new-password-file", pass, "--kdf-memory-mib", "1"); code == exitOK || !strings.Contains(errs, "already encrypted") {
		t.Fatalf("second key init: %d %q", code, errs)
	}
}

func TestServeRefusesMissingOrDamagedStoreFile(t *testing.T) {
	tests := []struct {
		file, damage, want string
	}{
		{"jobs.db", "missing", "jobs.db is missing"},
		{"resources.db", "missing", "resources.db is missing"},
		{"catalog.db", "missing", "catalog.db is missing"},
		{"jobs.db", "garbage", "both meta pages damaged"},
		{"jobs.db", "empty", "file is 0 bytes"},
		{"resources.db", "garbage", "both meta pages damaged"},
	}
	for _, tt := range tests {
		t.Run(tt.file+" "+tt.damage, func(t *testing.T) {
			mbr := initInstall(t)
			path := filepath.Join(filepath.Dir(mbr), tt.file)
			var err error
			switch tt.damage {
			case "missing":
				err = os.Remove(path)
			case "garbage":
				err = os.WriteFile(path, bytes.Repeat([]byte("garbage!"), 4096), 0o600)
			case "empty":
				err = os.WriteFile(path, nil, 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
			code, _, errs := fvRun(t, "serve", "--mbr", mbr, "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0", "--coap", "127.0.0.1:0")
			if code == exitOK || !strings.Contains(errs, path) || !strings.Contains(errs, tt.want) {
				t.Fatalf("serve: exit %d, %q; want it to name %s and say %q", code, errs, path, tt.want)
			}
			if _, err := os.Stat(path); tt.damage == "missing" && err == nil {
				t.Fatalf("serve created %s", path)
			}
		})
	}
}
