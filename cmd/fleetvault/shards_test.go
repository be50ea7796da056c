package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestShardOptions(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "shard.secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, file string
		want       int    // shards
		err        string // a phrase of the error; "" for none
	}{
		{"none", "http:\n  addr: \"\"\n", 0, ""},
		{"empty list", "mqtt:\n  shards: []\n", 0, ""},
		{"two", "mqtt:\n  shards:\n    - {name: s1, url: \"mqtt://127.0.0.1:1884\", user: fleetvault, password_file: " + secret + "}\n    - {name: s2, url: \"mqtt://127.0.0.1:1885\"}\n", 2, ""},
		{"bad name", "mqtt:\n  shards:\n    - {name: a.b, url: \"mqtt://h:1\"}\n", 0, "entry 1: name \"a.b\""},
		{"twice", "mqtt:\n  shards:\n    - {name: s1, url: \"mqtt://h:1\"}\n    - {name: s1, url: \"mqtt://h:2\"}\n", 0, "entry 2: name \"s1\" appears twice"},
		{"no url", "mqtt:\n  shards:\n    - {name: s1}\n", 0, "entry 1: shard s1: no url"},
		{"unknown key", "mqtt:\n  shards:\n    - {name: s1, url: \"mqtt://h:1\", pasword: x}\n", 0, "unknown key pasword"},
		{"missing password file", "mqtt:\n  shards:\n    - {name: s1, url: \"mqtt://h:1\", password_file: /nonexistent/x}\n", 0, "shard s1: password_file"},
		{"not a list", "mqtt:\n  shards: s1\n", 0, "want a list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, v := serveConfigOf(t, nil, tc.file)
			got, err := shardOptions(v)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "mqtt.shards") {
					t.Fatalf("err = %v, want one naming mqtt.shards and containing %q", err, tc.err)
				}
				return
			}
			if err != nil || len(got) != tc.want {
				t.Fatalf("shardOptions = %+v, %v; want %d shards", got, err, tc.want)
			}
			if tc.want == 2 && (got[0].Password != "s3cret" || got[0].User != "fleetvault" || got[1].Name != "s2") {
				t.Errorf("shards = %+v", got)
			}
		})
	}
}
