package brokertest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

func TestMosquittoConf(t *testing.T) {
	conf, err := mosquittoConf(filepath.Join(MosquittoDir(), "mosquitto.conf"), 12345, "/tmp/x/pw", "/tmp/x/acl")
	if err != nil {
		t.Fatal(err)
	}
	s := string(conf)
	for _, want := range []string{"\nlistener 12345 127.0.0.1\n", "\npassword_file /tmp/x/pw\n", "\nacl_file /tmp/x/acl\n",
		"\nallow_anonymous false\n", "\nuse_username_as_clientid true\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("config lacks %q:\n%s", strings.TrimSpace(want), s)
		}
	}
}

func TestMosquittoACL(t *testing.T) {
	acl, err := mosquittoACL(filepath.Join(MosquittoDir(), "fleetvault.acl"), []string{"srv-a", "srv-b"})
	if err != nil {
		t.Fatal(err)
	}
	s := string(acl)
	for _, want := range []string{
		"pattern read fleetvault/v1/%u/req\n", "pattern write fleetvault/v1/%u/res\n",
		"user srv-a\ntopic write fleetvault/v1/+/req\ntopic read fleetvault/v1/+/res\n",
		"user srv-b\ntopic write fleetvault/v1/+/req\ntopic read fleetvault/v1/+/res\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("ACL lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "user fleetvault") {
		t.Errorf("the example's server name survived:\n%s", s)
	}
	bad := filepath.Join(t.TempDir(), "bad.acl")
	if err := os.WriteFile(bad, []byte("pattern read x/%u\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := mosquittoACL(bad, nil); err == nil || !strings.Contains(err.Error(), "no server block") {
		t.Errorf("error %v, want one about the missing server block", err)
	}
}

func TestStartMosquittoServerNames(t *testing.T) {
	url := StartMosquitto(t, map[string]string{"dev1": "a", "ops": "b"}, []string{"ops"})
	if !strings.HasPrefix(url, "mqtt://127.0.0.1:") {
		t.Errorf("url %q", url)
	}
	client := func(name, pw string) paho.Client {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(name).SetUsername(name).SetPassword(pw))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("connect %s: %v", name, tok.Error())
		}
		t.Cleanup(func() { c.Disconnect(0) })
		return c
	}
	got := make(chan string, 1)
	dev := client("dev1", "a")
	if tok := dev.Subscribe("fleetvault/v1/dev1/req", 1, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	ops := client("ops", "b")
	if tok := ops.Publish("fleetvault/v1/dev1/req", 1, false, "from ops"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	select {
	case m := <-got:
		if m != "from ops" {
			t.Errorf("got %q", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server identity \"ops\" could not send a request: its ACL block is missing")
	}
}

func TestStart(t *testing.T) {
	b := Start(t, Credentials(t, map[string]string{"dev1": "pw"}, nil))
	if !strings.HasPrefix(URL(b), "mqtt://127.0.0.1:") {
		t.Errorf("URL %q", URL(b))
	}
}
