package main

import (
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/service"

	"github.com/fleetvault/fleetvault/apiclient"

	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/viper"
)

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
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

var (
	tokenRE   = regexp.MustCompile(`fvt_[A-Za-z0-9_-]{43}`)
	httpRE    = regexp.MustCompile(`HTTP API: +(http://[0-9.:]+)/api/v1`)
	brokerRE  = regexp.MustCompile(`MQTT broker \(embedded\): (mqtt://[0-9.:]+)`)
	stoppedRE = regexp.MustCompile(`fleetvault server stopped`)
)

// TestServe runs fleetvault serve configured from a file, calls its API
// with the admin token fleetvault init printed, manages tokens while it
// runs, and stops it by cancelling its context (as SIGINT does).
func TestServe(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fv")
	code, out, errs := runCLI(t, "init", "--dir", dir, "--insecure-no-encryption")
	if code != 0 {
		t.Fatalf("init: %d %s %s", code, out, errs)
	}
	admin := tokenRE.FindString(out)
	if admin == "" {
		t.Fatalf("init printed no admin token: %s", out)
	}
	mbr := filepath.Join(dir, "fleetvault.mbr")
	if st, err := os.Stat(service.TokenFile(mbr)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", st, err)
	}
	cfg := filepath.Join(t.TempDir(), "fleetvault.yaml")
	conf := fmt.Sprintf("mbr: %s\nlog:\n  format: json\nhttp:\n  addr: 127.0.0.1:0\nbroker:\n  addr: 127.0.0.1:0\ncoap:\n  listen: 127.0.0.1:0\n", mbr)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		a := &app{v: viper.New(), stdout: &stdout, stderr: &stderr, log: slog.New(slog.DiscardHandler)}
		root := newRootCommand(a)
		root.SetArgs([]string{"serve", "--config", cfg})
		root.SetOut(&stdout)
		root.SetErr(&stderr)
		done <- root.ExecuteContext(ctx)
	}()
	var base string
	deadline := time.Now().Add(20 * time.Second)
	for base == "" {
		select {
		case err := <-done:
			t.Fatalf("serve ended: %v\n%s\n%s", err, stdout.String(), stderr.String())
		default:
		}
		if m := httpRE.FindStringSubmatch(stdout.String()); m != nil {
			base = m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not print its API address:\n%s\n%s", stdout.String(), stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !brokerRE.MatchString(stdout.String()) || strings.Contains(stdout.String(), ":1883") {
		t.Fatalf("broker address not from the configuration file:\n%s", stdout.String())
	}

	c := apiclient.NewClient(base, admin)
	if h, err := c.Health(ctx); err != nil || h.Status != "ok" {
		t.Fatalf("health: %+v %v", h, err)
	}
	if _, err := c.CreateGroup(ctx, apiclient.NewGroup{Name: "new-homes"}); err != nil {
		t.Fatal(err)
	}
	if _, err := apiclient.NewClient(base, "fvt_nope").Groups(ctx); apiclient.StatusOf(err) != 401 {
		t.Fatalf("bad token: %v", err)
	}

	t.Run("token commands", func(t *testing.T) {
		code, out, errs := runCLI(t, "token", "create", "--name", "ci", "--mbr", mbr)
		ci := tokenRE.FindString(out)
		if code != 0 || ci == "" {
			t.Fatalf("create: %d %s %s", code, out, errs)
		}
		if _, err := apiclient.NewClient(base, ci).Groups(ctx); err != nil {
			t.Fatalf("new token refused: %v", err)
		}
		if code, out, _ := runCLI(t, "token", "list", "--mbr", mbr); code != 0 || !strings.Contains(out, "admin") || !strings.Contains(out, "ci") || tokenRE.MatchString(out) {
			t.Fatalf("list: %d %s", code, out)
		}
		if code, _, errs := runCLI(t, "token", "create", "--name", "ci", "--mbr", mbr); code != exitError || !strings.Contains(errs, "already exists") {
			t.Fatalf("create twice: %d %s", code, errs)
		}
		if code, out, errs := runCLI(t, "token", "revoke", "ci", "--mbr", mbr); code != 0 {
			t.Fatalf("revoke: %d %s %s", code, out, errs)
		}
		if _, err := apiclient.NewClient(base, ci).Groups(ctx); apiclient.StatusOf(err) != 401 {
			t.Fatalf("revoked token: %v", err)
		}
		if code, _, errs := runCLI(t, "token", "revoke", "cj", "--mbr", mbr); code != exitError || !strings.Contains(errs, `did you mean "admin"`) && !strings.Contains(errs, "no API token") {
			t.Fatalf("revoke unknown: %d %s", code, errs)
		}
		if code, _, _ := runCLI(t, "token", "create", "--mbr", mbr); code != exitUsage {
			t.Fatalf("create without a name: %d", code)
		}
	})

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
	if !stoppedRE.MatchString(stdout.String()) {
		t.Fatalf("output:\n%s", stdout.String())
	}
}

func TestServeUsage(t *testing.T) {
	mbr := initInstall(t)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no mbr", []string{"serve"}, exitUsage, "no installation"},
		{"tls without cert", []string{"serve", "--mbr", mbr, "--mqtt-tls", ":0"}, exitUsage, "--cert and --key"},
		{"cert without tls", []string{"serve", "--mbr", mbr, "--tls-self-signed"}, exitUsage, "--mqtt-tls"},
		{"user without url", []string{"serve", "--mbr", mbr, "--broker-user", "x"}, exitUsage, "--broker-url"},
		{"missing ca", []string{"serve", "--mbr", mbr, "--broker-url", "mqtts://127.0.0.1:1", "--broker-ca", "/nonexistent.pem"}, exitError, "broker.ca"},
		{"busy port", []string{"serve", "--mbr", mbr, "--mqtt", "127.0.0.1:0", "--http", "256.0.0.1:1"}, exitError, "HTTP API: httpguard: listen on 256.0.0.1:1"},
		{"smtp user without host", []string{"serve", "--mbr", mbr, "--smtp-user", "fv"}, exitUsage, "notify.smtp.username applies to the SMTP server"},
		{"smtp without sender", []string{"serve", "--mbr", mbr, "--smtp-host", "smtp.example.com"}, exitError, "notify.smtp.from"},
		{"smtp bad sender", []string{"serve", "--mbr", mbr, "--smtp-host", "smtp.example.com", "--smtp-from", "not an address"}, exitError, "notify.smtp"},
		{"smtp missing password file", []string{"serve", "--mbr", mbr, "--smtp-host", "h", "--smtp-from", "a@example.com", "--smtp-password-file", "/nonexistent"}, exitError, "notify.smtp.password_file"},
		{"digest hour", []string{"serve", "--mbr", mbr, "--digest-hour", "24"}, exitError, "notify.digest_hour"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("FLEETVAULT_MBR", "")
			code, out, errs := runCLI(t, tt.args...)
			if code != tt.code || !strings.Contains(errs, tt.want) {
				t.Fatalf("exit %d (want %d): %s %s; want %q", code, tt.code, out, errs, tt.want)
			}
		})
	}
}

// TestExampleConfig checks that the repository's fleetvault.yaml loads and
// documents every serve key, with the flags' defaults.
func TestExampleConfig(t *testing.T) {
	a := &app{v: viper.New(), stdout: io.Discard, stderr: io.Discard}
	cmd := newServeCommand(a)
	a.v.SetConfigFile("../../fleetvault.yaml")
	if err := a.v.ReadInConfig(); err != nil {
		t.Fatal(err)
	}
	v, err := serveConfig(a, cmd)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range serveKeys {
		t.Run(k.key, func(t *testing.T) {
			if !v.InConfig(k.key) {
				t.Fatalf("fleetvault.yaml does not document %s", k.key)
			}
			if got, want := v.GetString(k.key), cmd.Flags().Lookup(k.flag).DefValue; got != want {
				t.Fatalf("%s = %q in fleetvault.yaml, the flag's default is %q", k.key, got, want)
			}
		})
	}
	for _, k := range []string{"log.level", "log.format"} {
		if !v.InConfig(k) {
			t.Errorf("fleetvault.yaml does not document %s", k)
		}
	}
}

// TestServeConfigPrecedence checks flags over environment over file.
func TestServeConfigPrecedence(t *testing.T) {
	t.Setenv("FLEETVAULT_BROKER_ADDR", "env:2")
	t.Setenv("FLEETVAULT_BROKER_URL", "mqtt://env:3")
	_, v := serveConfigOf(t, []string{"--broker-url", "mqtt://flag:3"}, "http:\n  addr: file:1\nbroker:\n  addr: file:2\n  url: mqtt://file:3\n")
	for key, want := range map[string]string{"http.addr": "file:1", "broker.addr": "env:2", "broker.url": "mqtt://flag:3", "broker.tls_addr": ""} {
		if got := v.GetString(key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
}

// TestServeInsecureCoAP: plain CoAP is off unless --insecure-coap (or
// coap.insecure in the configuration) turns it on.
func TestServeInsecureCoAP(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		file string
		want bool
	}{
		{"default", nil, "", false},
		{"flag", []string{"--insecure-coap"}, "", true},
		{"configuration file", nil, "coap:\n  insecure: true\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, v := serveConfigOf(t, tc.args, tc.file)
			mbr, err := catalog.Init(t.TempDir(), catalog.InitOptions{}) // a lab installation, in clear
			if err != nil {
				t.Fatal(err)
			}
			a.v.Set("mbr", mbr)
			o, err := serveOptions(a, v)
			if err != nil {
				t.Fatal(err)
			}
			if o.InsecureCoAP != tc.want {
				t.Fatalf("InsecureCoAP = %v, want %v", o.InsecureCoAP, tc.want)
			}
		})
	}
}

// serveConfigOf is serve's configuration from args and a configuration
// file holding file ("" for none).
func serveConfigOf(t *testing.T, args []string, file string) (*app, *viper.Viper) {
	t.Helper()
	a := &app{v: viper.New(), stdout: io.Discard, stderr: io.Discard}
	cmd := newServeCommand(a)
	if err := cmd.Flags().Parse(args); err != nil {
		t.Fatal(err)
	}
	if file != "" {
		cfg := filepath.Join(t.TempDir(), "fleetvault.yaml")
		if err := os.WriteFile(cfg, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		a.v.SetConfigFile(cfg)
		if err := a.v.ReadInConfig(); err != nil {
			t.Fatal(err)
		}
	}
	v, err := serveConfig(a, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return a, v
}
