package tlscert

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSelfSignedNames(t *testing.T) {
	cert, err := SelfSigned("test", []string{"bui.acme.com", "10.1.2.3", "0.0.0.0", ""}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	for _, name := range []string{"localhost", "127.0.0.1", "::1", "bui.acme.com", "10.1.2.3"} {
		t.Run(name, func(t *testing.T) {
			if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
				t.Errorf("not valid for %s: %v", name, err)
			}
		})
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: "other.example", Roots: pool}); err == nil {
		t.Error("valid for a name it was not made for")
	}
}

func TestPersistentKeepsThePair(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	first, path, err := Persistent(dir, "test", nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, CertFileName) {
		t.Errorf("certificate path %s", path)
	}
	st, err := os.Stat(filepath.Join(dir, KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	second, _, err := Persistent(dir, "test", nil, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Certificate[0], second.Certificate[0]) {
		t.Error("a second start made a new certificate instead of keeping the first")
	}
	// Near its end, the pair is replaced.
	third, _, err := Persistent(dir, "test", nil, now.Add(Validity-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(first.Certificate[0], third.Certificate[0]) {
		t.Error("an expiring certificate was kept")
	}
}

func TestPersistentRefusesHalfAPair(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, CertFileName), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := Persistent(dir, "test", nil, time.Now())
	if err == nil || !strings.Contains(err.Error(), "only one of them exists") {
		t.Fatalf("err = %v, want a sentence about the missing half", err)
	}
	if err := os.WriteFile(filepath.Join(dir, KeyFileName), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = Persistent(dir, "test", nil, time.Now())
	if err == nil || !strings.Contains(err.Error(), CertFileName) {
		t.Fatalf("err = %v, want an error naming the damaged file", err)
	}
}

func TestLoadNeedsBoth(t *testing.T) {
	if _, err := Load("a.pem", ""); err == nil {
		t.Fatal("Load with no key file succeeded")
	}
}
