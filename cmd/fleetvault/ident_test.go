package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeReplication writes the article's replication rules to a file.
func writeReplication(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "replication.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const articleReplication = `replication:
  - local: 10.10.11.44:6543
    remote: 10.50.4.4:3456
  - local: 10.10.11.45
    remote: 10.50.4.4
`

func TestIdentParse(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string // one JSON object per line
		stderr string   // substring
	}{
		{
			name: "article settings form",
			args: []string{"10.10.33.33:7890?READ:SETTINGS:TAG"},
			stdout: []string{
				`{"address":"10.10.33.33","port":7890,"scheme":"","method":"READ","params":["SETTINGS"],"location":"TAG","canonical":"10.10.33.33:7890?READ:SETTINGS?TAG"}`,
			},
		},
		{
			name: "placeholder with a comma is one param; no params is []",
			args: []string{"10.10.11.22:3456?READ:<what device or IP to use for read, etc>?/xyz", "mqtt://home0001-climate?READ?TAG"},
			stdout: []string{
				`{"address":"10.10.11.22","port":3456,"scheme":"","method":"READ","params":["<what device or IP to use for read, etc>"],"location":"/xyz","canonical":"10.10.11.22:3456?READ:<what device or IP to use for read, etc>?/xyz"}`,
				`{"address":"home0001-climate","port":0,"scheme":"mqtt","method":"READ","params":[],"location":"TAG","canonical":"mqtt://home0001-climate?READ?TAG"}`,
			},
		},
		{
			name:   "invalid after a valid one",
			args:   []string{"[::1]:5683?WRITE:SETTINGS?TAG+SETTINGS", "10.10.11.44:?READ?TAG"},
			code:   1,
			stdout: []string{`{"address":"::1","port":5683,"scheme":"","method":"WRITE","params":["SETTINGS"],"location":"TAG+SETTINGS","canonical":"[::1]:5683?WRITE:SETTINGS?TAG+SETTINGS"}`},
			stderr: `fleetvault: identifier "10.10.11.44:?READ?TAG" column 13: expected a port number (1-65535) after ':'`,
		},
		{
			name:   "the article's template is not an identifier",
			args:   []string{"IP address:port?method:params?data location"},
			code:   1,
			stderr: "column 3: unexpected space",
		},
		{
			name:   "no arguments is a usage error",
			args:   []string{},
			code:   2,
			stderr: "requires at least 1 arg",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"ident", "parse"}, tt.args...), &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.code, stderr.String())
			}
			var lines []string
			if s := strings.TrimSuffix(stdout.String(), "\n"); s != "" {
				lines = strings.Split(s, "\n")
			}
			if len(lines) != len(tt.stdout) {
				t.Fatalf("stdout has %d lines, want %d:\n%s", len(lines), len(tt.stdout), stdout.String())
			}
			for i, line := range lines {
				if line != tt.stdout[i] {
					t.Errorf("line %d:\n got %s\nwant %s", i+1, line, tt.stdout[i])
				}
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Errorf("line %d is not JSON: %v", i+1, err)
				}
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tt.stderr)
			}
		})
	}
}

func TestIdentRewrite(t *testing.T) {
	good := writeReplication(t, articleReplication)
	bad := writeReplication(t, "replication:\n  - local: 10.10.11.44:6543\n    remote: 10.50.4.4:3456\n  - local: 10.10.11.45\n    remote: 10.50.4.x\n")
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{
			name:   "the article's DR example",
			args:   []string{"--replication", good, "10.10.11.44:6543?WRITE:IP:10.10.11.45,dedupe,<more params>?/mtree/backup/<client-id>"},
			stdout: "10.50.4.4:3456?WRITE:IP:10.50.4.4,dedupe,<more params>?/mtree/backup/<client-id>\n",
		},
		{
			name:   "settings form comes out canonical; unmatched is unchanged",
			args:   []string{"--replication", good, "10.10.11.44:6543?READ:SETTINGS:TAG", "mqtt://home1?READ:SETTINGS?TAG"},
			stdout: "10.50.4.4:3456?READ:SETTINGS?TAG\nmqtt://home1?READ:SETTINGS?TAG\n",
		},
		{
			name:   "malformed identifier",
			args:   []string{"--replication", good, "10.10.11.44:6543?READ:SETTINGS:TAG", "10.10.11.44:6543?READ"},
			code:   1,
			stdout: "10.50.4.4:3456?READ:SETTINGS?TAG\n",
			stderr: "column 22",
		},
		{
			name:   "malformed replication file",
			args:   []string{"--replication", bad, "10.10.11.44:6543?READ:SETTINGS:TAG"},
			code:   1,
			stderr: `replication.yaml: entry 2: remote "10.50.4.x": not an IP address or host`,
		},
		{
			name:   "missing replication file",
			args:   []string{"--replication", filepath.Join(t.TempDir(), "nope.yaml"), "h?READ?TAG"},
			code:   1,
			stderr: "nope.yaml",
		},
		{
			name:   "--replication is required",
			args:   []string{"h?READ?TAG"},
			code:   2,
			stderr: "replication",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"ident", "rewrite"}, tt.args...), &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.code, stderr.String())
			}
			if stdout.String() != tt.stdout {
				t.Errorf("stdout:\n got %q\nwant %q", stdout.String(), tt.stdout)
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tt.stderr)
			}
		})
	}
}

func TestIdentHelp(t *testing.T) {
	for _, args := range [][]string{{"ident", "--help"}, {"ident", "parse", "--help"}, {"ident", "rewrite", "--help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(args, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			if !strings.Contains(stdout.String(), "?") || !strings.Contains(stdout.String(), "Usage:") {
				t.Errorf("help output:\n%s", stdout.String())
			}
		})
	}
}
