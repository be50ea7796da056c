package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/fleetvault/fleetvault/broker"
)

// brokerProc is a running `fleetvault broker` and its standard output.
type brokerProc struct {
	url    string
	lines  chan string
	stderr *e2eBuffer
}

func startBrokerProc(t *testing.T, creds string) *brokerProc {
	t.Helper()
	cmd := exec.Command(e2eFleetvault(t), "broker", "--listen", "127.0.0.1:0", "--credentials", creds, "--reload", "50ms", "--log-level", "warn")
	stderr := &e2eBuffer{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	p := &brokerProc{lines: make(chan string, 16), stderr: stderr}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	first := p.next(t)
	url, ok := strings.CutPrefix(first, "listening ")
	if !ok {
		t.Fatalf("first line %q, want listening mqtt://ADDR; stderr: %s", first, stderr)
	}
	p.url = url
	return p
}

// next returns the next line of output, waiting up to 30 s.
func (p *brokerProc) next(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatal("fleetvault broker exited")
		}
		return l
	case <-time.After(30 * time.Second):
		t.Fatal("no output from fleetvault broker within 30 s")
	}
	return ""
}

// connect connects as user and reports the broker's refusal, if any.
func (p *brokerProc) connect(t *testing.T, user, password string) (paho.Client, error) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(p.url).SetClientID(user).SetUsername(user).SetPassword(password).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(10 * time.Second)
	c := paho.NewClient(o)
	tok := c.Connect()
	tok.Wait()
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c, nil
}

// subscribeCode returns the SUBACK return code for filter (0x80: refused).
func subscribeCode(t *testing.T, c paho.Client, filter string) byte {
	t.Helper()
	tok := c.Subscribe(filter, 1, func(paho.Client, paho.Message) {})
	tok.Wait()
	if err := tok.Error(); err != nil {
		t.Fatalf("subscribe %s: %v", filter, err)
	}
	return tok.(*paho.SubscribeToken).Result()[filter]
}

func writeCreds(t *testing.T, path string, users map[string]string, servers ...string) {
	t.Helper()
	var ids []broker.Identity
	for name, pw := range users {
		h, err := broker.HashPassword(pw)
		if err != nil {
			t.Fatal(err)
		}
		role := broker.RoleDevice
		for _, s := range servers {
			if s == name {
				role = broker.RoleServer
			}
		}
		ids = append(ids, broker.Identity{Name: name, Role: role, PasswordHash: h})
	}
	if _, err := broker.WriteCredentialsFile(path, ids); err != nil {
		t.Fatal(err)
	}
}

// TestBrokerCommand: fleetvault broker authenticates devices and servers from
// its credentials file, enforces the topic ACL, and picks up a changed file.
func TestBrokerCommand(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "s1.credentials.yaml")
	writeCreds(t, creds, map[string]string{"d1": "pw1", "d2": "pw2", "fleetvault": "srv"}, "fleetvault")
	p := startBrokerProc(t, creds)
	if got := p.next(t); got != "credentials 3" {
		t.Fatalf("second line %q, want credentials 3", got)
	}
	for _, tc := range []struct {
		name, user, password string
		refused              error
	}{
		{"device", "d1", "pw1", nil},
		{"wrong password", "d2", "pw1", packets.ErrorRefusedNotAuthorised},
		{"unknown name", "d9", "pw1", packets.ErrorRefusedNotAuthorised},
		{"server", "fleetvault", "srv", nil},
	} {
		t.Run("connect "+tc.name, func(t *testing.T) {
			_, err := p.connect(t, tc.user, tc.password)
			if tc.refused == nil && err != nil || tc.refused != nil && !errors.Is(err, tc.refused) {
				t.Fatalf("connect as %s: %v, want %v", tc.user, err, tc.refused)
			}
		})
	}
	dev, err := p.connect(t, "d2", "pw2")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := p.connect(t, "fleetvault", "srv")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		c      paho.Client
		filter string
		want   byte
	}{
		{"device, own requests", dev, "fleetvault/v1/d2/req", 1},
		{"device, another's requests", dev, "fleetvault/v1/d1/req", 0x80},
		{"device, every response", dev, "fleetvault/v1/+/res", 0x80},
		{"server, every response", srv, "fleetvault/v1/+/res", 1},
	} {
		t.Run("ACL "+tc.name, func(t *testing.T) {
			if got := subscribeCode(t, tc.c, tc.filter); got != tc.want {
				t.Fatalf("SUBACK for %s = %#x, want %#x", tc.filter, got, tc.want)
			}
		})
	}
	t.Run("reload", func(t *testing.T) {
		writeCreds(t, creds, map[string]string{"d1": "pw1", "d2": "pw2", "d3": "pw3", "fleetvault": "srv"}, "fleetvault")
		if got := p.next(t); got != "credentials 4" {
			t.Fatalf("after the change: %q, want credentials 4", got)
		}
		if _, err := p.connect(t, "d3", "pw3"); err != nil {
			t.Fatalf("a device added to the file: %v", err)
		}
	})
	t.Run("bad file keeps the identities", func(t *testing.T) {
		bad := creds + ".new"
		if err := os.WriteFile(bad, []byte("not: [valid"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(bad, creds); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(p.stderr.String(), "credentials not reloaded") {
			if time.Now().After(deadline) {
				t.Fatalf("the broker did not report the bad file: %s", p.stderr)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if _, err := p.connect(t, "d3", "pw3"); err != nil {
			t.Fatalf("after a bad file: %v", err)
		}
	})
}
