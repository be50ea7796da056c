package main

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// secretRE matches the network keys and alarm codes of
// testdata/e2e-secrets-fleet.yaml.
var secretRE = regexp.MustCompile(`NETKEY|ALARMCODE`)

// TestNoSecretInClear backs up and restores a fleet whose settings hold
// network keys and alarm codes, stops the server, and runs binutils'
// strings over every file of the installation: encrypted, it finds none;
// in clear (the lab option), it finds them, which shows that the secrets
// did reach the files.
func TestNoSecretInClear(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("end-to-end: needs the go tool to build the binary")
	}
	stringsTool, err := exec.LookPath("strings")
	if err != nil {
		t.Fatal("needs binutils' strings (Makefile DEB_PKGS installs binutils)")
	}
	tests := []struct {
		name      string
		initArgs  []string
		wantClear bool
	}{
		{"encrypted", nil, false},
		{"in clear", []string{"--insecure-no-encryption"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newE2EWorldOf(t, "e2e-secrets-fleet.yaml", 10, tt.initArgs...)
			for _, g := range [][2]string{{"reference", "refs"}, {"homes", "homes-backup"}} {
				if out := w.must(exitOK, append([]string{"backup", "--group", g[0], "--into", g[1]}, e2eRollout...)...); !strings.Contains(out, "backed-up") {
					t.Fatalf("backup %s:\n%s", g[0], out)
				}
			}
			// A restore journals its intents and keeps undo snapshots of
			// the settings it overwrites: those must not be in clear either.
			if out := w.must(exitOK, append([]string{"restore", "--from", "refs", "--to", "homes"}, e2eRollout...)...); !strings.Contains(out, "restored") {
				t.Fatalf("restore:\n%s", out)
			}
			if err := w.serve.Process.Signal(os.Interrupt); err != nil {
				t.Fatal(err)
			}
			_ = w.serve.Wait()
			found := map[string][]string{}
			err := filepath.WalkDir(w.dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() || filepath.Base(p) == "devices.yaml" { // the simulator's own device list, not the installation
					return err
				}
				out, err := exec.Command(stringsTool, "-a", "-n", "6", p).Output()
				if err != nil {
					return err
				}
				if m := secretRE.FindAllString(string(out), -1); len(m) > 0 {
					found[p] = m
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("files with secrets in clear: %v", keys(found))
			if tt.wantClear != (len(found) > 0) {
				t.Fatalf("strings found secrets in %d file(s) %v; want secrets found: %v", len(found), keys(found), tt.wantClear)
			}
			if tt.wantClear {
				return
			}
			if code, out, errOut := w.fv(w.token, "check", "--mbr", w.mbr, "--read-data"); code != exitOK {
				t.Fatalf("check: %d\n%s%s", code, out, errOut)
			}
		})
	}
}

func keys(m map[string][]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
