package service

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), TokenFileName)
	ts := OpenTokens(path)
	if _, err := ts.Verify("fvt_whatever"); !errors.Is(err, ErrBadToken) {
		t.Fatalf("verify with no file: %v", err)
	}
	admin, err := ts.Create("admin")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(admin, tokenPrefix) || len(admin) != len(tokenPrefix)+43 {
		t.Fatalf("token %q: want fvt_ and 43 base64url characters (256 bits)", admin)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode: %v %v", st, err)
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), admin) || strings.Contains(string(b), admin[len(tokenPrefix):]) {
		t.Fatal("the token file holds the token itself")
	}
	if ti, err := ts.Verify(admin); err != nil || ti.Name != "admin" {
		t.Fatalf("verify: %+v %v", ti, err)
	}

	// Another process (fleetvault token) changes the file: this store sees it.
	other := OpenTokens(path)
	ci, err := other.Create("ci")
	if err != nil {
		t.Fatal(err)
	}
	if ti, err := ts.Verify(ci); err != nil || ti.Name != "ci" {
		t.Fatalf("token made by another store: %+v %v", ti, err)
	}
	if err := other.Revoke("admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Verify(admin); !errors.Is(err, ErrBadToken) {
		t.Fatalf("revoked token: %v", err)
	}
	list, err := ts.List()
	if err != nil || len(list) != 1 || list[0].Name != "ci" || list[0].Created.IsZero() {
		t.Fatalf("list: %+v %v", list, err)
	}

	tests := []struct {
		name string
		do   func() error
		want error
		msg  string
	}{
		{"duplicate", func() error { _, err := ts.Create("ci"); return err }, ErrTokenExists, "revoke it first"},
		{"revoke unknown", func() error { return ts.Revoke("cj") }, ErrTokenUnknown, `did you mean "ci"?`},
		{"bad name", func() error { _, err := ts.Create("has space"); return err }, nil, "token name"},
		{"empty name", func() error { _, err := ts.Create(""); return err }, nil, "token name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v, want %v containing %q", err, tt.want, tt.msg)
			}
		})
	}
}

func TestTokenFileDamaged(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"not yaml", "tokens: [", "token file"},
		{"unknown key", "version: 1\ntokenz: []\n", "tokenz"},
		{"bad hash", "version: 1\ntokens:\n  - name: a\n    sha256: xyz\n", "64 hex digits"},
		{"no name", "version: 1\ntokens:\n  - sha256: " + strings.Repeat("ab", 32) + "\n", "no name"},
		{"future version", "version: 2\ntokens: []\n", "version 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), TokenFileName)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			ts := OpenTokens(path)
			_, err := ts.Verify("fvt_x")
			if err == nil || errors.Is(err, ErrBadToken) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("verify: %v, want an error naming %s and %q", err, path, tt.want)
			}
			if _, err := ts.Create("x"); err == nil {
				t.Fatal("create over a damaged file succeeded (it would lose its tokens)")
			}
		})
	}
	t.Run("empty file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), TokenFileName)
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenTokens(path).Create("x"); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzParseTokenFile(f *testing.F) {
	f.Add([]byte("version: 1\ntokens:\n  - name: admin\n    sha256: " + strings.Repeat("0f", 32) + "\n    created: 2026-11-24T10:00:00Z\n"))
	f.Add([]byte(""))
	f.Add([]byte("tokens: [{name: a}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tf, err := parseTokenFile(b, "fuzz.yaml")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, ti := range tf.Tokens {
			if ti.Name == "" || len(ti.Hash) != 64 {
				t.Fatalf("accepted %+v", ti)
			}
		}
	})
}
