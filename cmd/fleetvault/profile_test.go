package main

import (
	"encoding/json"
	"github.com/fleetvault/fleetvault/apiclient"
	"strings"
	"testing"

	"github.com/fleetvault/fleetvault/settingsdoc"
)

func TestProfileCommands(t *testing.T) {
	mbr := newTestInstallation(t)
	cli := directCLI(t, mbr)
	t.Run("set and show", func(t *testing.T) {
		cli(t, exitOK, "profile", "set", "keep-identity", "--keep", "/name", "--keep", "/network/*", "--set", "/label={{.Device.ID}}")
		out, _ := cli(t, exitOK, "profile", "show", "keep-identity", "--json")
		var p settingsdoc.Profile
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatal(err)
		}
		if p.Name != "keep-identity" || len(p.Keep) != 2 || len(p.Set) != 1 || p.Set[0].Template != "{{.Device.ID}}" {
			t.Fatalf("profile %+v", p)
		}
	})
	t.Run("list", func(t *testing.T) {
		out, _ := cli(t, exitOK, "profile", "list")
		if !strings.Contains(out, "keep-identity") || !strings.Contains(out, "keep /network/*") {
			t.Fatalf("list:\n%s", out)
		}
	})
	t.Run("bad pointer is a usage error naming it", func(t *testing.T) {
		_, errOut := cli(t, exitUsage, "profile", "set", "bad", "--keep", "name")
		if !strings.Contains(errOut, `"name"`) || strings.Contains(errOut, "goroutine") {
			t.Fatalf("stderr:\n%s", errOut)
		}
	})
	t.Run("bad set is a usage error", func(t *testing.T) {
		_, errOut := cli(t, exitUsage, "profile", "set", "bad", "--set", "/name")
		if !strings.Contains(errOut, "POINTER=TEMPLATE") {
			t.Fatalf("stderr:\n%s", errOut)
		}
	})
	t.Run("attach to a backup group, with a suggestion for a typo", func(t *testing.T) {
		out, _ := cli(t, exitOK, "group", "profile", "models", "keep-identity")
		if !strings.Contains(out, "profile keep-identity") {
			t.Fatalf("stdout:\n%s", out)
		}
		_, errOut := cli(t, exitError, "group", "profile", "models", "keep-identiy")
		if !strings.Contains(errOut, `did you mean "keep-identity"?`) {
			t.Fatalf("stderr:\n%s", errOut)
		}
	})
}

func TestCheckRestoreTarget(t *testing.T) {
	for _, tc := range []struct {
		name string
		nj   apiclient.NewJob
		ok   bool
	}{
		{"group restore", apiclient.NewJob{Source: "m", Target: "h"}, true},
		{"group restore as of", apiclient.NewJob{Source: "m", Target: "h", AsOf: "2026-11-24"}, true},
		{"bad as of", apiclient.NewJob{Source: "m", Target: "h", AsOf: "soon"}, false},
		{"no destination", apiclient.NewJob{Source: "m"}, false},
		{"replacement from a device", apiclient.NewJob{Device: "n", FromDevice: "o"}, true},
		{"replacement of a piece", apiclient.NewJob{Device: "n", Piece: "p", AllowTagMismatch: true}, true},
		{"both sources", apiclient.NewJob{Device: "n", Piece: "p", FromDevice: "o"}, false},
		{"device and group", apiclient.NewJob{Device: "n", Piece: "p", Target: "h"}, false},
		{"piece without device", apiclient.NewJob{Piece: "p", Source: "m", Target: "h"}, false},
		{"piece as of", apiclient.NewJob{Device: "n", Piece: "p", AsOf: "2026-11-24"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkRestoreTarget(tc.nj); (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok %v", err, tc.ok)
			}
		})
	}
}
