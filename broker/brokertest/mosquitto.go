package brokertest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// MosquittoDir returns the directory of the Mosquitto example files Fleetvault
// ships (examples/mosquitto), found relative to this source file.
func MosquittoDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "examples", "mosquitto")
}

// StartMosquitto starts a real Mosquitto on a free loopback port, configured
// with the shipped examples/mosquitto files: users (name → password) go into
// a password file made with mosquitto_passwd -b, and each name in servers gets
// the ACL's server block. It returns mqtt://127.0.0.1:port and stops
// Mosquitto when the test ends. It skips the test if mosquitto is not
// installed (Debian: apt-get install mosquitto, or make deps).
func StartMosquitto(t testing.TB, users map[string]string, servers []string) (url string) {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		t.Skip("brokertest: mosquitto is not installed (make deps, or apt-get install mosquitto mosquitto-clients)")
	}
	passwd, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Skip("brokertest: mosquitto_passwd is not installed (apt-get install mosquitto)")
	}
	for _, s := range servers {
		if _, ok := users[s]; !ok {
			t.Fatalf("brokertest: server %q has no password in users", s)
		}
	}
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "fleetvault.passwd")
	aclFile := filepath.Join(dir, "fleetvault.acl")
	confFile := filepath.Join(dir, "mosquitto.conf")
	writePasswords(t, passwd, pwFile, users)
	acl, err := mosquittoACL(filepath.Join(MosquittoDir(), "fleetvault.acl"), servers)
	if err != nil {
		t.Fatalf("brokertest: %v", err)
	}
	if err := os.WriteFile(aclFile, acl, 0o600); err != nil {
		t.Fatalf("brokertest: %v", err)
	}

	// A free port: bind, note, release. Mosquitto retries below if another
	// process takes it in between.
	for attempt := 0; attempt < 3; attempt++ {
		port := freePort(t)
		conf, err := mosquittoConf(filepath.Join(MosquittoDir(), "mosquitto.conf"), port, pwFile, aclFile)
		if err != nil {
			t.Fatalf("brokertest: %v", err)
		}
		if err := os.WriteFile(confFile, conf, 0o600); err != nil {
			t.Fatalf("brokertest: %v", err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if stop, ok := runMosquitto(t, bin, confFile, addr); ok {
			t.Cleanup(stop)
			return "mqtt://" + addr
		}
	}
	t.Fatal("brokertest: mosquitto did not start; see its output above")
	return ""
}

// writePasswords makes the password file with mosquitto_passwd -b, one call
// per user, in a stable order.
func writePasswords(t testing.TB, passwd, file string, users map[string]string) {
	t.Helper()
	names := make([]string, 0, len(users))
	for n := range users {
		names = append(names, n)
	}
	sort.Strings(names)
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatalf("brokertest: %v", err)
	}
	for _, n := range names {
		out, err := exec.Command(passwd, "-b", file, n, users[n]).CombinedOutput()
		if err != nil {
			t.Fatalf("brokertest: mosquitto_passwd -b %s %s: %v: %s", file, n, err, out)
		}
	}
}

// mosquittoConf rewrites the shipped configuration for a test: the listener
// on 127.0.0.1:port, the password and ACL files in the test's directory, and
// (as root) no privilege drop, so Mosquitto can read them. Everything else is
// kept as shipped.
func mosquittoConf(shipped string, port int, pwFile, aclFile string) ([]byte, error) {
	src, err := os.ReadFile(shipped)
	if err != nil {
		return nil, fmt.Errorf("mosquitto example config: %w", err)
	}
	var out bytes.Buffer
	found := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		line := sc.Text()
		key, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch key {
		case "listener":
			line = fmt.Sprintf("listener %d 127.0.0.1", port)
		case "password_file":
			line = "password_file " + pwFile
		case "acl_file":
			line = "acl_file " + aclFile
		}
		found[key] = true
		out.WriteString(line + "\n")
	}
	for _, k := range []string{"listener", "password_file", "acl_file", "allow_anonymous"} {
		if !found[k] {
			return nil, fmt.Errorf("mosquitto example config %s has no %s line", shipped, k)
		}
	}
	if os.Geteuid() == 0 {
		out.WriteString("user root\n")
	}
	out.WriteString("log_dest stderr\n")
	return out.Bytes(), nil
}

// mosquittoACL repeats the shipped ACL's server block ("user fleetvault" and
// the topic lines after it) for each server name.
func mosquittoACL(shipped string, servers []string) ([]byte, error) {
	src, err := os.ReadFile(shipped)
	if err != nil {
		return nil, fmt.Errorf("mosquitto example ACL: %w", err)
	}
	var head, block []string
	inBlock := false
	for _, line := range strings.Split(string(src), "\n") {
		trim := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trim, "user "):
			inBlock = true
		case inBlock && strings.HasPrefix(trim, "topic "):
			block = append(block, trim)
		case inBlock && trim != "" && !strings.HasPrefix(trim, "#"):
			return nil, fmt.Errorf("mosquitto example ACL %s: unexpected %q after the server block", shipped, trim)
		case !inBlock:
			head = append(head, line)
		}
	}
	if len(block) == 0 {
		return nil, fmt.Errorf("mosquitto example ACL %s has no server block (user ... topic ...)", shipped)
	}
	out := strings.Join(head, "\n") + "\n"
	for _, s := range servers {
		out += "user " + s + "\n" + strings.Join(block, "\n") + "\n\n"
	}
	return []byte(out), nil
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("brokertest: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// runMosquitto starts Mosquitto and waits until it accepts connections on
// addr; it reports false if Mosquitto exited first.
func runMosquitto(t testing.TB, bin, conf, addr string) (stop func(), ok bool) {
	t.Helper()
	cmd := exec.Command(bin, "-c", conf)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("brokertest: start mosquitto: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop = func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Logf("brokertest: mosquitto exited (%v):\n%s", err, out.String())
			return nil, false
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return stop, true
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	t.Fatalf("brokertest: mosquitto did not listen on %s within 10s:\n%s", addr, out.String())
	return nil, false
}

// syncBuffer collects a process's output safely.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
