package broker_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/broker"
)

// mosquittoClient runs mosquitto_pub or mosquitto_sub against b with the
// given identity, returning its output and error.
func mosquittoClient(ctx context.Context, t *testing.T, tool string, b *broker.Broker, id, pw string, args ...string) ([]byte, error) {
	t.Helper()
	bin, err := exec.LookPath(tool)
	if err != nil {
		t.Skipf("%s is not installed (make deps, or apt-get install mosquitto-clients)", tool)
	}
	host, port, _ := net.SplitHostPort(b.Addr().String())
	all := append([]string{"-h", host, "-p", port, "-V", "mqttv311", "-i", id, "-u", id, "-P", pw}, args...)
	cmd := exec.CommandContext(ctx, bin, all...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return out.Bytes(), err
}

func TestInteropMosquittoClients(t *testing.T) {
	b, _ := fleet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := broker.RequestTopic("home1-thermo")

	t.Run("request from mosquitto_pub reaches mosquitto_sub", func(t *testing.T) {
		type result struct {
			out []byte
			err error
		}
		done := make(chan result, 1)
		go func() {
			out, err := mosquittoClient(ctx, t, "mosquitto_sub", b, "home1-thermo", "pw-thermo", "-t", req, "-q", "1", "-C", "1", "-W", "20")
			done <- result{out, err}
		}()
		poll(t, "mosquitto_sub to subscribe", func() bool { return b.Subscribed("home1-thermo", req) })
		if out, err := mosquittoClient(ctx, t, "mosquitto_pub", b, "fleetvault", "pw-server", "-t", req, "-q", "1", "-m", "hello device"); err != nil {
			t.Fatalf("mosquitto_pub: %v: %s", err, out)
		}
		r := <-done
		if r.err != nil || strings.TrimSpace(string(r.out)) != "hello device" {
			t.Errorf("mosquitto_sub: %v, output %q; want \"hello device\"", r.err, r.out)
		}
	})

	t.Run("wrong password refused", func(t *testing.T) {
		before := b.Stats().AuthPassword
		out, err := mosquittoClient(ctx, t, "mosquitto_pub", b, "home1-thermo", "nope", "-t", broker.ResponseTopic("home1-thermo"), "-m", "x")
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Errorf("exit %v; want non-zero", err)
		}
		if !strings.Contains(string(out), "not authorised") {
			t.Errorf("output %q; want \"not authorised\"", out)
		}
		if got := b.Stats().AuthPassword - before; got != 1 {
			t.Errorf("password failures counted %d, want 1", got)
		}
	})

	t.Run("subscribing to another device's requests is refused", func(t *testing.T) {
		before := b.Stats().ACLSubscribeDenials
		out, err := mosquittoClient(ctx, t, "mosquitto_sub", b, "home1-thermo", "pw-thermo",
			"-t", broker.RequestTopic("home2-lock"), "-q", "1", "-C", "1", "-W", "2")
		// mosquitto_sub reports the SUBACK failure and exits (status 0 in 2.0).
		if !strings.Contains(string(out), "subscription requests were denied") {
			t.Errorf("mosquitto_sub: %v, output %q; want the subscription denied", err, out)
		}
		if got := b.Stats().ACLSubscribeDenials - before; got != 1 {
			t.Errorf("subscribe denials counted %d, want 1 (output %q)", got, out)
		}
		if strings.Contains(string(out), "hello") {
			t.Errorf("received a message: %q", out)
		}
	})

	t.Run("publishing to another device's response topic is dropped and counted", func(t *testing.T) {
		got := make(chan string, 10)
		cancelSub, err := b.Subscribe(broker.ResponseFilter, func(topic string, payload []byte) { got <- topic + " " + string(payload) })
		if err != nil {
			t.Fatal(err)
		}
		defer cancelSub()
		before := b.Stats().ACLPublishDenials
		_, _ = mosquittoClient(ctx, t, "mosquitto_pub", b, "home1-thermo", "pw-thermo", "-t", broker.ResponseTopic("home2-lock"), "-q", "0", "-m", "forged")
		if out, err := mosquittoClient(ctx, t, "mosquitto_pub", b, "home1-thermo", "pw-thermo", "-t", broker.ResponseTopic("home1-thermo"), "-q", "1", "-m", "real"); err != nil {
			t.Fatalf("mosquitto_pub to its own response topic: %v: %s", err, out)
		}
		select {
		case m := <-got:
			if m != "fleetvault/v1/home1-thermo/res real" {
				t.Errorf("server received %q first; want the real response only", m)
			}
		case <-time.After(waitFor):
			t.Fatal("the real response never arrived")
		}
		if d := b.Stats().ACLPublishDenials - before; d != 1 {
			t.Errorf("publish denials counted %d, want 1", d)
		}
	})
}
