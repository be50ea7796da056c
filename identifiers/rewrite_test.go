package identifiers

import (
	"os"
	"strings"
	"testing"
)

func TestRewriteVectors(t *testing.T) {
	n := 0
	for i, v := range loadVectors(t) {
		if v.Rules == nil {
			continue
		}
		n++
		t.Run(vectorName(i, v), func(t *testing.T) {
			if v.Output == nil {
				t.Fatalf("rewrite vector %d has no output", i)
			}
			var rules []Rule
			for _, r := range v.Rules {
				local, err := ParseEndpoint(r.Local)
				if err != nil {
					t.Fatal(err)
				}
				remote, err := ParseEndpoint(r.Remote)
				if err != nil {
					t.Fatal(err)
				}
				rules = append(rules, Rule{local, remote})
			}
			id := MustParse(v.Input)
			before := id.String()
			got := Rewrite(id, rules)
			if got.String() != *v.Output {
				t.Errorf("Rewrite(%q)\n got %q\nwant %q", v.Input, got.String(), *v.Output)
			}
			if id.String() != before {
				t.Errorf("Rewrite modified its input: %q", id.String())
			}
			checkRoundTrip(t, got)
		})
	}
	if n == 0 {
		t.Fatal("no rewrite vectors")
	}
}

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		in   string
		want Endpoint
		err  string
	}{
		{"10.10.11.44:6543", Endpoint{"10.10.11.44", 6543}, ""},
		{"10.10.11.45", Endpoint{"10.10.11.45", 0}, ""},
		{"[2001:DB8::1]:5683", Endpoint{"2001:db8::1", 5683}, ""},
		{"[::1]", Endpoint{"::1", 0}, ""},
		{"2001:db8::1", Endpoint{"2001:db8::1", 0}, ""},
		{"backup.site-b.example:22", Endpoint{"backup.site-b.example", 22}, ""},
		{"10.50.4.x", Endpoint{}, `"10.50.4.x": not an IP address or host`},
		{"", Endpoint{}, "not an IP address or host"},
		{"10.1.1.1:0", Endpoint{}, "expected a port number (1-65535)"},
		{"10.1.1.1:99999", Endpoint{}, "expected a port number"},
		{"10.1.1.1:", Endpoint{}, "expected a port number"},
		{"10.1.1.1:+80", Endpoint{}, "expected a port number"},
		{":80", Endpoint{}, "no host"},
		{"host name", Endpoint{}, "unexpected ' '"},
		{"[::1", Endpoint{}, "never closed"},
		{"[10.0.0.1]:80", Endpoint{}, "IPv6"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseEndpoint(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseEndpoint(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseEndpoint(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			back, err := ParseEndpoint(got.String())
			if err != nil || back != got {
				t.Fatalf("ParseEndpoint(%q) = %v, %v; want %v", got.String(), back, err, got)
			}
		})
	}
}

func TestReadReplication(t *testing.T) {
	f, err := os.Open("testdata/replication.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rules, err := ReadReplication(f, "replication.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []Rule{
		{Endpoint{"10.10.11.44", 6543}, Endpoint{"10.50.4.4", 3456}},
		{Endpoint{"10.10.11.45", 0}, Endpoint{"10.50.4.4", 0}},
	}
	if len(rules) != len(want) {
		t.Fatalf("got %v, want %v", rules, want)
	}
	for i := range want {
		if rules[i] != want[i] {
			t.Errorf("rule %d = %v, want %v", i, rules[i], want[i])
		}
	}
	id := Rewrite(MustParse("10.10.11.44:6543?WRITE:IP:10.10.11.45,dedupe,<more params>?/mtree/backup/<client-id>"), rules)
	if got, want := id.String(), "10.50.4.4:3456?WRITE:IP:10.50.4.4,dedupe,<more params>?/mtree/backup/<client-id>"; got != want {
		t.Errorf("Rewrite = %q, want %q", got, want)
	}
}

func TestReadReplicationErrors(t *testing.T) {
	tests := []struct {
		name, yaml, err string
	}{
		{"bad remote", "replication:\n  - local: 10.10.11.44:6543\n    remote: 10.50.4.4:3456\n  - local: 10.10.11.45\n    remote: 10.50.4.x\n",
			`replication.yaml: entry 2: remote "10.50.4.x": not an IP address or host`},
		{"bad local port", "replication:\n  - local: 10.10.11.44:0\n    remote: 10.50.4.4\n", `replication.yaml: entry 1: local "10.10.11.44:0": expected a port number`},
		{"missing remote", "replication:\n  - local: 10.10.11.44\n", "replication.yaml: entry 1: line 2: remote is missing"},
		{"missing local", "replication:\n  - remote: 10.10.11.44\n", "entry 1: line 2: local is missing"},
		{"unknown field", "replication:\n  - local: 10.10.11.44\n    remot: 10.1.1.1\n", `entry 1: line 3: unknown field "remot"`},
		{"twice", "replication:\n  - local: 10.10.11.44\n    local: 10.1.1.1\n", "entry 1: line 3: local given twice"},
		{"unquoted IPv6", "replication:\n  - local: [fe80::1]\n    remote: 10.1.1.1\n", "quote IPv6"},
		{"duplicate local", "replication:\n  - {local: 10.0.0.1, remote: 10.0.0.2}\n  - {local: 10.0.0.1, remote: 10.0.0.3}\n", "entry 2: local 10.0.0.1 is already mapped by entry 1"},
		{"entry not a mapping", "replication:\n  - 10.0.0.1\n", "entry 1: line 2: expected local: and remote:"},
		{"not a list", "replication: 10.0.0.1\n", "replication.yaml: line 1: replication: expected a list"},
		{"no list", "replications:\n  - {local: 10.0.0.1, remote: 10.0.0.2}\n", "no replication: list"},
		{"empty", "", "replication.yaml: empty file"},
		{"not YAML", "replication: [\n", "replication.yaml: yaml:"},
		{"top-level list", "- local: 10.0.0.1\n", "expected a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules, err := ReadReplication(strings.NewReader(tt.yaml), "replication.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("ReadReplication = %v, %v; want error containing %q", rules, err, tt.err)
			}
		})
	}
}

func TestReadReplicationEmptyList(t *testing.T) {
	for _, y := range []string{"replication:\n", "replication: []\n", "other: 1\nreplication: []\n"} {
		rules, err := ReadReplication(strings.NewReader(y), "r.yaml")
		if err != nil || len(rules) != 0 {
			t.Errorf("ReadReplication(%q) = %v, %v; want no rules", y, rules, err)
		}
	}
}

// FuzzRewrite checks that rewriting any valid identifier with the article's
// rules never panics and gives a valid identifier.
func FuzzRewrite(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(v.Input)
	}
	rules := []Rule{
		{Endpoint{"10.10.11.44", 6543}, Endpoint{"10.50.4.4", 3456}},
		{Endpoint{"10.10.11.45", 0}, Endpoint{"10.50.4.4", 0}},
		{Endpoint{"::1", 0}, Endpoint{"2001:db8::1", 80}},
		{Endpoint{"host", 0}, Endpoint{"other", 0}},
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s)
		if err != nil {
			return
		}
		checkRoundTrip(t, Rewrite(id, rules))
	})
}

// FuzzParseEndpoint checks that endpoints never panic and that what parses
// round-trips through String.
func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{"10.10.11.44:6543", "10.10.11.45", "[2001:db8::1]:5683", "::1", "host.example:80", "10.50.4.x", "[::1", ":80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseEndpoint(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		back, err := ParseEndpoint(e.String())
		if err != nil || back != e {
			t.Fatalf("ParseEndpoint(%q) = %v; its String %q parses as %v, %v", s, e, e.String(), back, err)
		}
	})
}

// FuzzReadReplication checks that no replication file panics and that every
// error names the file.
func FuzzReadReplication(f *testing.F) {
	f.Add(articleRules)
	f.Add("replication:\n  - local: 10.10.11.45\n    remote: 10.50.4.x\n")
	f.Add("replication: [{local: a, remote: b}, {local: a, remote: c}]\n")
	f.Fuzz(func(t *testing.T, s string) {
		rules, err := ReadReplication(strings.NewReader(s), "r.yaml")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "r.yaml: ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, r := range rules {
			if r.Local.Host == "" || r.Remote.Host == "" {
				t.Fatalf("rule with an empty host: %v", r)
			}
		}
	})
}

const articleRules = `replication:
  - local: 10.10.11.44:6543
    remote: 10.50.4.4:3456
  - local: 10.10.11.45
    remote: 10.50.4.4
`
