package broker_test

import (
	"testing"

	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/broker/brokertest"
)

// TestMosquittoExampleFiles runs the protocol against a real Mosquitto
// configured with examples/mosquitto, to prove the shipped ACL matches the
// embedded broker's rules.
func TestMosquittoExampleFiles(t *testing.T) {
	url := brokertest.StartMosquitto(t, map[string]string{
		"home1-thermo": "pw-thermo", "home2-lock": "pw-lock", "fleetvault": "pw-server",
	}, []string{"fleetvault"})

	t.Run("wrong password refused", func(t *testing.T) {
		if _, err := connect(t, url, "home1-thermo", "home1-thermo", "wrong"); err == nil {
			t.Error("connected with a wrong password")
		}
	})
	t.Run("unknown device refused", func(t *testing.T) {
		if _, err := connect(t, url, "home9", "home9", "pw-thermo"); err == nil {
			t.Error("connected as an unknown device")
		}
	})

	srv := mustConnect(t, url, "fleetvault", "fleetvault", "pw-server")
	srvIn := newInbox()
	if code := subscribe(t, srv, broker.ResponseFilter, srvIn); code >= 0x80 {
		t.Fatalf("server subscribe %s: SUBACK %#x", broker.ResponseFilter, code)
	}
	dev := mustConnect(t, url, "home1-thermo", "home1-thermo", "pw-thermo")
	devIn := newInbox()
	if code := subscribe(t, dev, broker.RequestTopic("home1-thermo"), devIn); code >= 0x80 {
		t.Fatalf("device subscribe own request topic: SUBACK %#x", code)
	}
	// Mosquitto may grant a subscription it will never deliver to; what
	// matters is that nothing arrives.
	subscribe(t, dev, broker.RequestTopic("home2-lock"), devIn)

	t.Run("server sends a request to a device", func(t *testing.T) {
		if err := publish(t, srv, broker.RequestTopic("home1-thermo"), 1, "read tag"); err != nil {
			t.Fatal(err)
		}
		devIn.wait(t, "fleetvault/v1/home1-thermo/req read tag")
	})
	t.Run("device answers on its own response topic", func(t *testing.T) {
		if err := publish(t, dev, broker.ResponseTopic("home1-thermo"), 1, "tag"); err != nil {
			t.Fatal(err)
		}
		srvIn.wait(t, "fleetvault/v1/home1-thermo/res tag")
	})
	t.Run("device cannot forge another device's response or read its requests", func(t *testing.T) {
		if err := publish(t, dev, broker.ResponseTopic("home2-lock"), 1, "forged"); err != nil {
			t.Fatal(err)
		}
		if err := publish(t, srv, broker.RequestTopic("home2-lock"), 1, "for lock only"); err != nil {
			t.Fatal(err)
		}
		// Ordered after both: once these arrive, the others would have too.
		if err := publish(t, srv, broker.RequestTopic("home1-thermo"), 1, "marker"); err != nil {
			t.Fatal(err)
		}
		if err := publish(t, dev, broker.ResponseTopic("home1-thermo"), 1, "marker"); err != nil {
			t.Fatal(err)
		}
		devIn.wait(t, "fleetvault/v1/home1-thermo/req marker")
		srvIn.wait(t, "fleetvault/v1/home1-thermo/res marker")
		if srvIn.has("fleetvault/v1/home2-lock/res forged") {
			t.Error("the server received a forged response")
		}
		if devIn.has("fleetvault/v1/home2-lock/req for lock only") {
			t.Error("a device read another device's request")
		}
	})
	t.Run("device cannot send requests", func(t *testing.T) {
		other := mustConnect(t, url, "home2-lock", "home2-lock", "pw-lock")
		otherIn := newInbox()
		subscribe(t, other, broker.RequestTopic("home2-lock"), otherIn)
		_ = publish(t, dev, broker.RequestTopic("home2-lock"), 1, "forged request")
		if err := publish(t, srv, broker.RequestTopic("home2-lock"), 1, "real request"); err != nil {
			t.Fatal(err)
		}
		otherIn.wait(t, "fleetvault/v1/home2-lock/req real request")
		if otherIn.has("fleetvault/v1/home2-lock/req forged request") {
			t.Error("a device's forged request was delivered")
		}
	})
}
