package mosquittoconf_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetvault/fleetvault/broker/mosquittoconf"
)

func TestWrite(t *testing.T) {
	ok := []mosquittoconf.Identity{{Name: "fleetvault", Password: "s", Server: true}, {Name: "d1", Password: "p"}}
	for _, tc := range []struct {
		name   string
		cfg    mosquittoconf.Config
		phrase string // of the error; "" for none
	}{
		{"good", mosquittoconf.Config{Listen: "127.0.0.1:1885", Identities: ok}, ""},
		{"no port", mosquittoconf.Config{Listen: "127.0.0.1", Identities: ok}, "listen address"},
		{"port 0", mosquittoconf.Config{Listen: "127.0.0.1:0", Identities: ok}, "port from 1"},
		{"no identities", mosquittoconf.Config{Listen: "127.0.0.1:1885"}, "no identities"},
		{"topic wildcard in a name", mosquittoconf.Config{Listen: "127.0.0.1:1885", Identities: []mosquittoconf.Identity{{Name: "d+", Password: "p"}}}, "not a valid name"},
		{"twice", mosquittoconf.Config{Listen: "127.0.0.1:1885", Identities: []mosquittoconf.Identity{{Name: "d1", Password: "p"}, {Name: "d1", Password: "q"}}}, "twice"},
		{"no password", mosquittoconf.Config{Listen: "127.0.0.1:1885", Identities: []mosquittoconf.Identity{{Name: "d1"}}}, "no password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			err := mosquittoconf.Write(dir, tc.cfg)
			if tc.phrase != "" {
				if err == nil || !strings.Contains(err.Error(), tc.phrase) {
					t.Fatalf("Write = %v, want an error containing %q", err, tc.phrase)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			pw, _ := os.ReadFile(filepath.Join(dir, mosquittoconf.PasswordFile))
			if lines := strings.Split(strings.TrimSpace(string(pw)), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "d1:$7$101$") {
				t.Errorf("password file:\n%s", pw)
			}
			conf, _ := os.ReadFile(filepath.Join(dir, mosquittoconf.ConfFile))
			if !strings.Contains(string(conf), "listener 1885 127.0.0.1\n") || !strings.Contains(string(conf), "allow_anonymous false\n") {
				t.Errorf("mosquitto.conf:\n%s", conf)
			}
		})
	}
}

// TestACLMatchesExample: the generated ACL grants exactly the rules of the
// shipped examples/mosquitto/fleetvault.acl.
func TestACLMatchesExample(t *testing.T) {
	dir := t.TempDir()
	if err := mosquittoconf.Write(dir, mosquittoconf.Config{Listen: "127.0.0.1:1885", Identities: []mosquittoconf.Identity{{Name: "fleetvault", Password: "s", Server: true}}}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, mosquittoconf.ACLFile))
	want, err := os.ReadFile("../../examples/mosquitto/fleetvault.acl")
	if err != nil {
		t.Fatal(err)
	}
	if r1, r2 := rules(string(got)), rules(string(want)); r1 != r2 {
		t.Fatalf("generated ACL rules\n%s\ndiffer from the example's\n%s", r1, r2)
	}
}

// rules are an ACL's lines without comments and blank lines.
func rules(acl string) string {
	var out []string
	for _, l := range strings.Split(acl, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
