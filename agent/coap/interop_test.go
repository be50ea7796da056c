package coap

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// coapClient finds libcoap's command-line client (Debian's libcoap3-bin
// installs it as coap-client-notls, -openssl and -gnutls, with coap-client as
// an alternative that may be absent).
func coapClient(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"coap-client", "coap-client-notls", "coap-client-openssl", "coap-client-gnutls"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("coap-client (Debian package libcoap3-bin) is not installed; run make deps")
	return ""
}

// runCoapClient runs coap-client with args. For a success it returns the
// payload (written to a file, byte for byte). For a refusal libcoap writes the
// code and the payload to stderr with unprintable bytes shown as '.', so it
// returns the code and that text.
func runCoapClient(t *testing.T, bin string, args ...string) (payload []byte, refusal string) {
	t.Helper()
	b, stderr, err := execCoapClient(t, bin, 10, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, stderr.String())
	}
	if b != nil {
		return b, ""
	}
	if stderr.Len() < 5 || stderr.Bytes()[1] != '.' {
		t.Fatalf("coap-client wrote no answer; stderr: %q", stderr.String())
	}
	return nil, stderr.String()
}

// probeURI is the URI a plain CoAP client uses to ask for a resource. The
// identifier's '?' and ':' are legal in a URI query; percent-encoding them
// is equally understood, because libcoap decodes before it sends.
func probeURI(d *testDevice, path, id, ident string, escape bool) string {
	if escape {
		ident = url.QueryEscape(ident)
	}
	return fmt.Sprintf("coap://%s:%d%s?v=1&id=%s&ident=%s", d.host, d.port, path, id, ident)
}

func TestInteropCoapClient(t *testing.T) {
	bin := coapClient(t)
	d := startDevice(t, "127.0.0.1", nil)
	ident := d.ident(agent.LocTag).String()

	for _, escape := range []bool{false, true} {
		t.Run(fmt.Sprintf("get tag escaped=%v", escape), func(t *testing.T) {
			b, refusal := runCoapClient(t, bin, "-m", "get", probeURI(d, PathTag, "probe-1", ident, escape))
			if refusal != "" {
				t.Fatalf("refused: %q", refusal)
			}
			resp, err := agent.DecodeResponse(b)
			if err != nil {
				t.Fatalf("decode %x: %v", b, err)
			}
			if resp.Err != nil || resp.ID != "probe-1" {
				t.Fatalf("answer %+v (err %v)", resp, resp.Err)
			}
			if z, _ := resp.Tag.Get(tagmatch.KeyZone); z != "South" {
				t.Fatalf("tag %v, want zone South", resp.Tag)
			}
		})
	}

	t.Run("get refused", func(t *testing.T) {
		// The identifier asks for the settings at the tag's resource.
		_, refusal := runCoapClient(t, bin, "-m", "get", probeURI(d, PathTag, "probe-2", d.ident(agent.LocSettings).String(), true))
		if !strings.HasPrefix(refusal, "4.00 ") || !strings.Contains(refusal, agent.CodeBadRequest) || !strings.Contains(refusal, "probe-2") {
			t.Fatalf("answer %q, want 4.00 with a bad-request Response for probe-2", refusal)
		}
	})

	t.Run("put settings blockwise", func(t *testing.T) {
		settings := agent.Settings{"setpoint": uint64(22), "table": strings.Repeat("x", 5000)}
		req := writeRequest(t, "coap-client-job", settings)
		req.V, req.ID, req.Ident = agent.Version, "put-1", d.ident(agent.LocWrite).String()
		body, err := agent.EncodeRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "request.cbor")
		if err := os.WriteFile(file, body, 0o600); err != nil {
			t.Fatal(err)
		}
		uri := fmt.Sprintf("coap://%s:%d%s", d.host, d.port, PathSettings)
		b, refusal := runCoapClient(t, bin, "-m", "put", "-t", "60", "-b", "1024", "-f", file, uri)
		if refusal != "" {
			t.Fatalf("refused: %q", refusal)
		}
		resp, err := agent.DecodeResponse(b)
		if err != nil {
			t.Fatalf("decode %x: %v", b, err)
		}
		if resp.Err != nil || !bytes.Equal(resp.Hash, req.Hash) {
			t.Fatalf("answer %+v (err %v), want hash %x", resp, resp.Err, req.Hash)
		}
		got, _ := d.dev.Settings(context.Background())
		if got["setpoint"] != uint64(22) {
			t.Fatalf("device holds %v after the PUT", got)
		}
	})
}

// coapClientDTLS finds a build of libcoap's client with DTLS (Debian's
// libcoap3-bin installs coap-client-openssl and coap-client-gnutls).
func coapClientDTLS(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"coap-client-openssl", "coap-client-gnutls", "coap-client"} {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		out, _ := exec.Command(p, "-h").CombinedOutput()
		if bytes.Contains(out, []byte("DTLS and TLS support")) || bytes.Contains(out, []byte("DTLS support")) {
			return p
		}
	}
	t.Skip("no coap-client with DTLS (Debian package libcoap3-bin) is installed; run make deps")
	return ""
}

// runCoapClientFails runs coap-client with args and returns what it said,
// for a run that must not get an answer through.
func runCoapClientFails(t *testing.T, bin string, args ...string) string {
	t.Helper()
	b, stderr, _ := execCoapClient(t, bin, 3, args...)
	if len(b) > 0 {
		t.Fatalf("%s %s got an answer through: %x", bin, strings.Join(args, " "), b)
	}
	return stderr.String()
}

// execCoapClient runs coap-client with args, waiting at most wait seconds
// for an answer, and returns the payload it wrote (nil for none) and what
// it said on stderr.
func execCoapClient(t *testing.T, bin string, wait int, args ...string) ([]byte, *bytes.Buffer, error) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "answer.cbor")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-B", strconv.Itoa(wait), "-o", out}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	b, rerr := os.ReadFile(out)
	if rerr != nil {
		b = nil
	}
	return b, &stderr, err
}

func TestInteropCoapClientPSK(t *testing.T) {
	bin := coapClientDTLS(t)
	d := startSecureDevice(t, testKey)
	tagURI := fmt.Sprintf("coaps://%s:%d%s?v=1&id=probe-psk&ident=%s", d.host, d.port, PathTag,
		url.QueryEscape(d.secureIdent(agent.LocTag).String()))

	t.Run("get tag with the right key", func(t *testing.T) {
		b, refusal := runCoapClient(t, bin, "-m", "get", "-u", d.id(), "-k", string(testKey), tagURI)
		if refusal != "" {
			t.Fatalf("refused: %q", refusal)
		}
		resp, err := agent.DecodeResponse(b)
		if err != nil {
			t.Fatalf("decode %x: %v", b, err)
		}
		if z, _ := resp.Tag.Get(tagmatch.KeyZone); resp.Err != nil || resp.ID != "probe-psk" || z != "South" {
			t.Fatalf("answer %+v (err %v)", resp, resp.Err)
		}
	})

	put := func(t *testing.T, setpoint uint64) (file, uri string, hash []byte) {
		req := writeRequest(t, fmt.Sprintf("psk-job-%d", setpoint), agent.Settings{"setpoint": setpoint})
		req.V, req.ID, req.Ident = agent.Version, fmt.Sprintf("put-%d", setpoint), d.secureIdent(agent.LocWrite).String()
		body, err := agent.EncodeRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		file = filepath.Join(t.TempDir(), "request.cbor")
		if err := os.WriteFile(file, body, 0o600); err != nil {
			t.Fatal(err)
		}
		return file, fmt.Sprintf("coaps://%s:%d%s", d.host, d.port, PathSettings), req.Hash
	}

	t.Run("put settings with the right key", func(t *testing.T) {
		file, uri, hash := put(t, 24)
		b, refusal := runCoapClient(t, bin, "-m", "put", "-t", "60", "-u", d.id(), "-k", string(testKey), "-f", file, uri)
		if refusal != "" {
			t.Fatalf("refused: %q", refusal)
		}
		resp, err := agent.DecodeResponse(b)
		if err != nil || resp.Err != nil || !bytes.Equal(resp.Hash, hash) {
			t.Fatalf("answer %+v (%v), want hash %x", resp, err, hash)
		}
		if got, _ := d.dev.Settings(context.Background()); got["setpoint"] != uint64(24) {
			t.Fatalf("device holds %v after the PUT", got)
		}
	})

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"wrong key", []string{"-u", d.id(), "-k", "fleetvault-wrong-key-001"}},
		{"wrong identity", []string{"-u", "someone-else", "-k", string(testKey)}},
	} {
		t.Run("put settings with "+tc.name, func(t *testing.T) {
			file, uri, _ := put(t, 99)
			runCoapClientFails(t, bin, append(append([]string{"-m", "put", "-t", "60"}, tc.args...), "-f", file, uri)...)
			if got, _ := d.dev.Settings(context.Background()); got["setpoint"] != uint64(24) {
				t.Fatalf("device holds %v after a PUT with the %s", got, tc.name)
			}
		})
	}

	t.Run("plain coap is refused", func(t *testing.T) {
		file, _, _ := put(t, 98)
		uri := fmt.Sprintf("coap://%s:%d%s", d.host, d.port, PathSettings)
		_, refusal := runCoapClient(t, bin, "-m", "put", "-t", "60", "-f", file, uri)
		if !strings.HasPrefix(refusal, "4.01") {
			t.Fatalf("plain PUT answered %q, want 4.01 Unauthorized", refusal)
		}
		if got, _ := d.dev.Settings(context.Background()); got["setpoint"] != uint64(24) {
			t.Fatalf("device holds %v after a plain PUT", got)
		}
	})
}
