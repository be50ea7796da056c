package leanmqtt

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/broker/brokertest"
)

func addr(u string) string { return strings.TrimPrefix(u, "mqtt://") }

func TestEcho(t *testing.T) {
	creds := brokertest.Credentials(t, map[string]string{"dev1": "pw1"}, map[string]string{"srv": "pws"})
	b := brokertest.Start(t, creds)
	for _, version := range []byte{4, 5} {
		t.Run(map[byte]string{4: "mqtt3.1.1", 5: "mqtt5"}[version], func(t *testing.T) {
			ctx := context.Background()
			dev, err := Dial(ctx, Options{
				Addr: addr(brokertest.URL(b)), ClientID: "dev1", Username: "dev1", Password: "pw1", Version: version,
				Subscribe: []string{agent.RequestTopic("dev1")},
				OnMessage: func(c *Conn, topic string, payload []byte) {
					if err := c.Publish(agent.ResponseTopic("dev1"), payload, 1); err != nil {
						t.Errorf("echo: %v", err)
					}
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer dev.Close()
			got := make(chan string, 10)
			srv, err := Dial(ctx, Options{
				Addr: addr(brokertest.URL(b)), ClientID: "srv", Username: "srv", Password: "pws", Version: version,
				Subscribe: []string{agent.ResponseWildcard},
				OnMessage: func(_ *Conn, topic string, payload []byte) { got <- topic + " " + string(payload) },
			})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			for i := 0; i < 3; i++ {
				if err := srv.Publish(agent.RequestTopic("dev1"), []byte{'a' + byte(i)}, 1); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < 3; i++ {
				select {
				case m := <-got:
					if want := "fleetvault/v1/dev1/res " + string(rune('a'+i)); m != want {
						t.Errorf("got %q, want %q", m, want)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("no echo")
				}
			}
			waitFor(t, func() bool { return srv.Inflight() == 0 && dev.Inflight() == 0 }, "PUBACKs")
		})
	}
}

func TestRefused(t *testing.T) {
	creds := brokertest.Credentials(t, map[string]string{"dev1": "pw1"}, nil)
	b := brokertest.Start(t, creds)
	cases := []struct {
		name string
		opts Options
	}{
		{"wrong password", Options{ClientID: "dev1", Username: "dev1", Password: "nope"}},
		{"other device's topic", Options{ClientID: "dev1", Username: "dev1", Password: "pw1", Subscribe: []string{agent.RequestTopic("dev2")}}},
		{"bad version", Options{ClientID: "dev1", Username: "dev1", Password: "pw1", Version: 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Addr = addr(brokertest.URL(b))
			conn, err := Dial(context.Background(), c.opts)
			if err == nil {
				conn.Close()
				t.Fatal("connected")
			}
			t.Log(err)
		})
	}
}

func TestDropAndBrokerLoss(t *testing.T) {
	creds := brokertest.Credentials(t, map[string]string{"dev1": "pw1"}, nil)
	b := brokertest.Start(t, creds)
	c, err := Dial(context.Background(), Options{Addr: addr(brokertest.URL(b)), ClientID: "dev1", Username: "dev1", Password: "pw1"})
	if err != nil {
		t.Fatal(err)
	}
	c.Drop()
	<-c.Done()
	if !errors.Is(c.Err(), ErrClosed) {
		t.Errorf("Err after Drop = %v", c.Err())
	}
	if err := c.Publish("x", nil, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Drop = %v", err)
	}
	c, err = Dial(context.Background(), Options{Addr: addr(brokertest.URL(b)), ClientID: "dev1", Username: "dev1", Password: "pw1"})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("connection not ended when the broker closed")
	}
	if c.Err() == nil {
		t.Error("no error after broker loss")
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
