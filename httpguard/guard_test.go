package httpguard

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// serve starts s and stops it when the test ends.
func serve(t *testing.T, s *Server) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
}

func hello(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") }

func TestSelfSignedTLSWithCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed (make test installs it)")
	}
	dir := t.TempDir()
	s, err := Listen(Options{Addr: "127.0.0.1:0", SelfSignedDir: dir}, Headers(http.HandlerFunc(hello), HeaderOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	serve(t, s)
	if !s.TLS() || !strings.HasPrefix(s.URL(), "https://") {
		t.Fatalf("TLS %v, URL %s", s.TLS(), s.URL())
	}
	out, err := exec.Command(curl, "-sS", "--cacert", s.CertFile(), "-D", "-", s.URL()+"/").CombinedOutput()
	if err != nil {
		t.Fatalf("curl --cacert: %v\n%s", err, out)
	}
	if !bytes.HasSuffix(out, []byte("hello")) || !bytes.Contains(bytes.ToLower(out), []byte("strict-transport-security")) {
		t.Errorf("curl got:\n%s", out)
	}
	// Without trusting the certificate, curl refuses the server.
	if out, err := exec.Command(curl, "-sS", s.URL()+"/").CombinedOutput(); err == nil {
		t.Errorf("curl without --cacert trusted a self-signed certificate:\n%s", out)
	}
}

func TestCertificateFiles(t *testing.T) {
	dir := t.TempDir()
	first, err := Listen(Options{Addr: "127.0.0.1:0", SelfSignedDir: dir}, http.HandlerFunc(hello))
	if err != nil {
		t.Fatal(err)
	}
	certFile := first.CertFile()
	first.ln.Close()
	// The kept pair, given as files, serves the same certificate.
	s, err := Listen(Options{Addr: "127.0.0.1:0", CertFile: certFile, KeyFile: strings.TrimSuffix(certFile, "api-cert.pem") + "api-key.pem"}, http.HandlerFunc(hello))
	if err != nil {
		t.Fatal(err)
	}
	serve(t, s)
	pem, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(s.URL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d", resp.StatusCode)
	}

	for name, o := range map[string]Options{
		"key without certificate": {Addr: "127.0.0.1:0", KeyFile: "k.pem"},
		"files and self-signed":   {Addr: "127.0.0.1:0", CertFile: certFile, KeyFile: "k.pem", SelfSignedDir: dir},
		"missing files":           {Addr: "127.0.0.1:0", CertFile: dir + "/none.pem", KeyFile: dir + "/none-key.pem"},
	} {
		t.Run(name, func(t *testing.T) {
			if s, err := Listen(o, http.HandlerFunc(hello)); err == nil {
				s.ln.Close()
				t.Fatal("Listen succeeded")
			}
		})
	}
}

func TestWarnsWithoutTLSOffLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		warn bool
	}{{"127.0.0.1:0", false}, {"[::1]:0", false}, {"0.0.0.0:0", true}} {
		t.Run(tc.addr, func(t *testing.T) {
			var buf bytes.Buffer
			s, err := Listen(Options{Addr: tc.addr, Logger: slog.New(slog.NewTextHandler(&buf, nil))}, http.HandlerFunc(hello))
			if err != nil {
				t.Skipf("cannot listen on %s here: %v", tc.addr, err)
			}
			s.ln.Close()
			if got := strings.Contains(buf.String(), "without TLS"); got != tc.warn {
				t.Errorf("warned %v, want %v; log: %s", got, tc.warn, buf.String())
			}
		})
	}
}

// clock is a settable time for throttles.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// tokenCheck answers 200 to "Bearer good" and 401 to anything else.
func tokenCheck(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer good" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	io.WriteString(w, "ok")
}

// clientFrom returns an HTTP client whose connections come from the
// loopback address ip (any of 127.0.0.0/8 reaches a loopback listener).
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

func get(t *testing.T, c *http.Client, url, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestThrottleFailedAuthentications(t *testing.T) {
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	th := NewThrottle(ThrottleOptions{Failures: 10, Refill: 5 * time.Second, Now: clk.Now})
	s, err := Listen(Options{Addr: "127.0.0.1:0"}, th.Wrap(http.HandlerFunc(tokenCheck)))
	if err != nil {
		t.Fatal(err)
	}
	serve(t, s)
	url := s.URL() + "/"
	attacker, other := clientFrom("127.0.0.1"), clientFrom("127.0.0.2")

	var statuses []int
	for range 30 {
		resp := get(t, attacker, url, "wrong")
		statuses = append(statuses, resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	for i, st := range statuses {
		want := http.StatusUnauthorized
		if i >= 10 {
			want = http.StatusTooManyRequests
		}
		if st != want {
			t.Fatalf("wrong token %d answered %d, want %d (all: %v)", i+1, st, want, statuses)
		}
	}
	// A good token from another address is unaffected; from the throttled
	// address it waits like the rest.
	if resp := get(t, other, url, "good"); resp.StatusCode != http.StatusOK {
		t.Errorf("good token from another address: %d", resp.StatusCode)
	}
	if resp := get(t, attacker, url, "good"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("good token from the throttled address: %d, want 429", resp.StatusCode)
	}
	if st := th.Stats(); st.Failed != 10 || st.Refused != 21 {
		t.Errorf("stats %+v, want 10 failed, 21 refused", st)
	}
	// One refill later the address may try once more.
	clk.Add(5 * time.Second)
	if resp := get(t, attacker, url, "good"); resp.StatusCode != http.StatusOK {
		t.Errorf("good token after the refill: %d", resp.StatusCode)
	}
}

func TestThrottleForgetsAddresses(t *testing.T) {
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	th := NewThrottle(ThrottleOptions{Failures: 1, Refill: time.Minute, Addresses: 3, Now: clk.Now})
	for i := range 10 {
		th.Failed(fmt.Sprintf("10.0.0.%d", i))
		clk.Add(time.Second)
	}
	if n := len(th.addrs); n > 3 {
		t.Fatalf("%d addresses remembered, limit 3", n)
	}
	if _, blocked := th.Blocked("10.0.0.9"); !blocked {
		t.Error("the newest failing address was forgotten")
	}
}

func TestReadTimeoutCutsATricklingBody(t *testing.T) {
	readErr := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
		if err != nil {
			w.WriteHeader(http.StatusRequestTimeout)
		}
	})
	s, err := Listen(Options{Addr: "127.0.0.1:0", ReadTimeout: 300 * time.Millisecond}, h)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, s)
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
	stop := make(chan struct{})
	sent := make(chan int, 1)
	go func() {
		n := 0
		defer func() { sent <- n }()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte("x")); err != nil {
					return
				}
				n++
			}
		}
	}()
	select {
	case err := <-readErr:
		if err == nil {
			t.Fatal("the handler read the whole trickling body")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the trickling body was not cut off")
	}
	close(stop)
	if n := <-sent; n >= 100000 {
		t.Fatalf("all %d bytes were sent", n)
	}
}

func TestHeaderSizeLimit(t *testing.T) {
	s, err := Listen(Options{Addr: "127.0.0.1:0", MaxHeaderBytes: 4 << 10}, http.HandlerFunc(hello))
	if err != nil {
		t.Fatal(err)
	}
	serve(t, s)
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 64<<10))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status %d, want 431", resp.StatusCode)
	}
}

func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	fail := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", http.StatusNotFound) })
	s, err := Listen(Options{Addr: "127.0.0.1:0"}, Headers(fail, HeaderOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	serve(t, s)
	resp, err := http.Get(s.URL() + "/missing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for k, want := range map[string]string{
		"X-Content-Type-Options":    "nosniff",
		"X-Frame-Options":           "DENY",
		"Referrer-Policy":           "no-referrer",
		"Content-Security-Policy":   APIPolicy,
		"Cache-Control":             "no-store",
		"Strict-Transport-Security": "", // plain HTTP: none
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
}
