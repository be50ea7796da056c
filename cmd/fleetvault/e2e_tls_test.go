package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestE2EServeTLSAndThrottle runs fleetvault serve --http-self-signed as a
// person would and reaches it with the real curl: over TLS with the kept
// certificate (and not without it); 30 wrong tokens in a burst from one
// address answered 429 after the allowance, while the admin token from
// another loopback address still works; and the CLI with --cacert.
func TestE2EServeTLSAndThrottle(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("needs curl (make test installs it)")
	}
	w := newE2EInstallation(t)
	_, out := w.start("serve", "--mbr", w.mbr, "--http", w.httpAddr, "--mqtt", w.mqttAddr, "--http-self-signed", "--http-read-timeout", "1s")
	w.serveLogs = append(w.serveLogs, out)
	cert := filepath.Join(filepath.Dir(w.mbr), "api-cert.pem")
	base := "https://" + w.httpAddr
	get := func(args ...string) (string, error) {
		b, err := exec.Command(curl, append([]string{"-sS", "--max-time", "10"}, args...)...).CombinedOutput()
		return string(b), err
	}
	e2eWaitFor(t, 30*time.Second, "the server's /healthz over TLS", func() bool {
		body, err := get("--cacert", cert, base+"/healthz")
		return err == nil && strings.Contains(body, `"status"`)
	})
	if !strings.Contains(out.String(), "API certificate:") || !strings.Contains(out.String(), "https://") {
		t.Errorf("serve did not print the https URL and the certificate to trust:\n%s", out.String())
	}

	t.Run("without trusting the certificate curl refuses", func(t *testing.T) {
		if body, err := get(base + "/healthz"); err == nil {
			t.Fatalf("curl trusted a self-signed certificate: %s", body)
		}
	})

	t.Run("plain HTTP is not served", func(t *testing.T) {
		if body, err := get("http://" + w.httpAddr + "/healthz"); err == nil && strings.Contains(body, `"status"`) {
			t.Fatalf("the API answered plain HTTP: %s", body)
		}
	})

	t.Run("a request whose body trickles in is cut off by the read timeout", func(t *testing.T) {
		pem, err := os.ReadFile(cert)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		conn, err := tls.Dial("tcp", w.httpAddr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// No token: a slow client need not authenticate to hold a connection.
		fmt.Fprintf(conn, "POST /api/v1/devices HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
		start, sent := time.Now(), 0
		for ; sent < 100000; sent++ {
			if _, err := conn.Write([]byte(" ")); err != nil {
				break // the server closed the connection
			}
			if time.Since(start) > 30*time.Second {
				t.Fatalf("the server still reads a trickling body after %d bytes", sent)
			}
			time.Sleep(100 * time.Millisecond) // the client's trickle, one byte at a time
		}
		if sent >= 100000 {
			t.Fatal("the whole trickling body was accepted")
		}
	})

	// Before the burst below, which throttles 127.0.0.1 for a while.
	t.Run("the CLI trusts the certificate with --cacert", func(t *testing.T) {
		code, stdout, stderr := w.fv(w.token, "device", "list", "--server", base, "--cacert", cert)
		if code != exitOK {
			t.Fatalf("device list --cacert: exit %d\n%s%s", code, stdout, stderr)
		}
		missing := filepath.Join(t.TempDir(), "none.pem")
		code, _, stderr = w.fv(w.token, "device", "list", "--server", base, "--cacert", missing)
		if code == exitOK || !strings.Contains(stderr, "--cacert") {
			t.Fatalf("device list with a missing --cacert file: exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("a burst of wrong tokens is throttled, other addresses are not", func(t *testing.T) {
		var codes []string
		for range 30 {
			body, err := get("--cacert", cert, "-o", "/dev/null", "-w", "%{http_code}", "-H", "Authorization: Bearer fvt_wrong", base+"/api/v1/devices")
			if err != nil {
				t.Fatalf("curl: %v %s", err, body)
			}
			codes = append(codes, body)
		}
		if codes[0] != "401" || codes[29] != "429" {
			t.Fatalf("statuses of 30 wrong tokens: %v; want 401 first and 429 after the allowance", codes)
		}
		n401 := strings.Count(strings.Join(codes, " "), "401")
		if n401 < 5 || n401 > 15 {
			t.Errorf("%d of 30 wrong tokens answered 401 before throttling: %v", n401, codes)
		}
		headers, err := get("--cacert", cert, "-D", "-", "-o", "/dev/null", "-H", "Authorization: Bearer fvt_wrong", base+"/api/v1/devices")
		if err != nil || !strings.Contains(strings.ToLower(headers), "retry-after:") {
			t.Errorf("a throttled answer has no Retry-After: %v\n%s", err, headers)
		}
		// The admin token from another address of the host is unaffected.
		code, err := get("--cacert", cert, "--interface", "127.0.0.2", "-o", "/dev/null", "-w", "%{http_code}",
			"-H", "Authorization: Bearer "+w.token, "https://127.0.0.1"+w.httpAddr[strings.LastIndex(w.httpAddr, ":"):]+"/api/v1/devices")
		if err != nil || code != "200" {
			t.Fatalf("admin token from 127.0.0.2: %q %v", code, err)
		}
	})

	if _, err := os.Stat(filepath.Join(filepath.Dir(w.mbr), "api-key.pem")); err != nil {
		t.Errorf("the self-signed key was not kept: %v", err)
	}
}
