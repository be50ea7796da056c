package broker

import (
	"context"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// TestRepairAfterRacingCleanup emulates mochi's race: an older connection's
// cleanup, running just after the device reconnected, deletes the live
// client from the client map by id and its subscription from the topic tree.
// The broker must put both back, so requests reach the device again.
func TestRepairAfterRacingCleanup(t *testing.T) {
	hash, err := HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{TCPAddr: "127.0.0.1:0", Credentials: StaticCredentials{"dev1": {Name: "dev1", Role: RoleDevice, PasswordHash: hash}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got := make(chan string, 10)
	opts := paho.NewClientOptions().AddBroker("tcp://" + b.Addr().String()).SetClientID("dev1").SetUsername("dev1").SetPassword("pw")
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(0)
	if tok := c.Subscribe(RequestTopic("dev1"), 1, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	// What the racing cleanup of an older "dev1" connection does:
	b.srv.Clients.Delete("dev1")
	b.srv.Topics.Unsubscribe(RequestTopic("dev1"), "dev1")

	deadline := time.Now().Add(10 * time.Second)
	for n := 0; ; n++ {
		if err := b.Publish(RequestTopic("dev1"), []byte("request"), 1); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-got:
			if m != "request" {
				t.Fatalf("got %q", m)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the device never received a request after %d tries: it was not restored", n+1)
		}
	}
}
