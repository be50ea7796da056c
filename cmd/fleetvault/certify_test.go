package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
)

// noServerURL is where no server listens: the commands work on --mbr.
const noServerURL = "http://127.0.0.1:1"

// TestCertifyDirect runs the certification commands on an installation
// directly (no server answers): certify, show, policies, device marks, and
// prune keeping the newest certified backup, listed with its reason; a test
// restore says it needs a server.
func TestCertifyDirect(t *testing.T) {
	mbr := initInstall(t)
	addPieces(t, mbr)
	c, err := catalog.Open(mbr, catalog.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := c.Pieces(catalog.Query{Client: "home1"}) // newest first
	c.Close()
	if err != nil || len(ps) != 4 {
		t.Fatalf("pieces of home1: %d %v", len(ps), err)
	}
	oldest := ps[3].ID
	fv := func(args ...string) (int, string, string) {
		args = append(args, "--mbr", mbr)
		if args[0] != "catalog" { // catalog works on the files only
			args = append(args, "--server", noServerURL)
		}
		return runFV(t, args...)
	}
	tests := []struct {
		name string
		args []string
		code int
		says string
	}{
		{"certify needs yes or no", []string{"certify", oldest}, exitUsage, "--yes"},
		{"certify", []string{"certify", oldest, "--yes", "--note", "twin matched"}, 0, "certified"},
		{"show", []string{"certify", "show", oldest}, 0, "twin matched"},
		{"unknown backup", []string{"certify", "show", "00000000000000ff"}, 1, "no backup"},
		{"prune keeps the certified one", []string{"catalog", "prune", "--dry-run", "--client", "home1", "--keep-last", "1"}, 0, "kept " + oldest},
		{"test restore needs a server", []string{"certify", "test", oldest, "--into", "twin"}, 1, "fleetvault serve"},
		{"policy set", []string{"certify", "policy", "set", "critical", "--lapse-days", "30"}, 0, "30 days"},
		{"policy bad category", []string{"certify", "policy", "set", "vital", "--remind-days", "3"}, 1, "critical or non-critical"},
		{"device add", []string{"device", "add", "lab1"}, 0, "lab1"},
		{"device set", []string{"device", "set", "lab1", "--category", "critical", "--test-bench"}, 0, "category critical, test bench yes"},
		{"device set bad category", []string{"device", "set", "lab1", "--category", "vital"}, 1, "critical or non-critical"},
		{"list unknown", []string{"certify", "list", "--state", "maybe"}, exitUsage, "--state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := fv(tt.args...)
			if code != tt.code || !strings.Contains(out+errs, tt.says) {
				t.Fatalf("exit %d (want %d), output %q %q, want it to say %q", code, tt.code, out, errs, tt.says)
			}
		})
	}
	code, out, errs := fv("certify", "list", "--json", "--state", "certified")
	var cs []apiclient.Certification
	if code != 0 || json.Unmarshal([]byte(out), &cs) != nil {
		t.Fatalf("list: %d %q %q", code, out, errs)
	}
	// addPieces' pieces have no type: they are not settings backups, so
	// the list (backups only) is empty; the record is there all the same.
	if code, out, _ := fv("certify", "show", oldest, "--json"); code != 0 || !strings.Contains(out, `"state": "certified"`) {
		t.Fatalf("show --json: %d %s", code, out)
	}
	if code, out, _ := fv("certify", "policy", "list", "--json"); code != 0 || !strings.Contains(out, `"lapse_days": 30`) {
		t.Fatalf("policy list: %d %s", code, out)
	}
}
