package repokey

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// testParams keep argon2id cheap in tests.
var testParams = Params{Time: 1, MemoryKiB: 64, Threads: 1}

func TestKeyFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	k, first, err := Create(dir, []byte("one"), testParams)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("keys directory mode: %v %v", st.Mode().Perm(), err)
	}
	second, err := Add(dir, k, []byte("two"), testParams)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		pass    string
		wantID  string
		wantErr error
	}{
		{"first passphrase", "one", first.ID, nil},
		{"second passphrase", "two", second.ID, nil},
		{"wrong passphrase", "three", "", ErrWrongPassphrase},
		{"empty passphrase", "", "", ErrWrongPassphrase},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, info, err := Open(dir, []byte(tt.pass))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (info.ID != tt.wantID || got.ID() != k.ID()) {
				t.Fatalf("Open gave key file %s key %s, want %s key %s", info.ID, got.ID(), tt.wantID, k.ID())
			}
		})
	}
	if _, _, err := Create(dir, []byte("x"), testParams); err == nil {
		t.Fatal("Create over existing key files succeeded")
	}
	if err := Remove(dir, first.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(dir, []byte("one")); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("a removed key file still opens: %v", err)
	}
	if err := Remove(dir, second.ID); !errors.Is(err, ErrLastKey) {
		t.Fatalf("removing the last key file: %v", err)
	}
	if err := Remove(dir, "0000"); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("removing an unknown key file: %v", err)
	}
	infos, err := List(dir)
	if err != nil || len(infos) != 1 || infos[0].ID != second.ID || infos[0].KeyID != k.ID() {
		t.Fatalf("List = %+v, %v", infos, err)
	}
}

func TestKeyFileDamage(t *testing.T) {
	dir := t.TempDir()
	_, info, err := Create(dir, []byte("one"), testParams)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, info.ID+".key")
	data, _ := os.ReadFile(path)
	tests := []struct {
		name string
		data []byte
	}{
		{"garbage", []byte("not json")},
		{"huge memory", bytes.Replace(data, []byte(`"memory_kib": 64`), []byte(`"memory_kib": 99999999`), 1)},
		{"altered wrapped key", bytes.Replace(data, []byte(`"data": "`), []byte(`"data": "AAAA`), 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, _, err := Open(dir, []byte("one")); err == nil {
				t.Fatal("a damaged key file opened")
			}
		})
	}
}

func TestStream(t *testing.T) {
	plain := bytes.Repeat([]byte("settings 0123456789 "), 10000) // several segments
	var buf bytes.Buffer
	w, err := NewWriter(&buf, []byte("pass"), testParams)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	enc := buf.Bytes()
	if !IsEncrypted(enc) || bytes.Contains(enc, []byte("settings")) {
		t.Fatal("the stream is not encrypted")
	}
	tests := []struct {
		name    string
		data    []byte
		pass    string
		wantErr bool
	}{
		{"round trip", enc, "pass", false},
		{"wrong passphrase", enc, "nope", true},
		{"truncated", enc[:len(enc)-100], "pass", true},
		{"last segment dropped", enc[:len(enc)-(len(plain)%segmentSize)-Overhead()-4], "pass", true},
		{"flipped byte", append(bytes.Clone(enc[:200]), append([]byte{enc[200] ^ 1}, enc[201:]...)...), "pass", true},
		{"data after the end", append(bytes.Clone(enc), 'x'), "pass", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(tt.data), []byte(tt.pass))
			var got []byte
			if err == nil {
				got, err = io.ReadAll(r)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && !bytes.Equal(got, plain) {
				t.Fatal("round trip changed the data")
			}
		})
	}
}

// BenchmarkSeal seals a 400-byte payload, the size of a compressed
// settings document (docs/BENCHMARKS.md, "Encryption at rest").
func BenchmarkSeal(b *testing.B) {
	k, err := New()
	if err != nil {
		b.Fatal(err)
	}
	plain, ad := make([]byte, 400), make([]byte, 33)
	dst := make([]byte, 0, 512)
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		dst = k.Seal(dst[:0], plain, ad)
	}
}
