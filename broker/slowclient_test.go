package broker_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/broker/brokertest"
)

// subscribeRaw subscribes a raw client to filter at QoS 1 and waits for the
// SUBACK.
func (c *rawClient) subscribeRaw(t *testing.T, filter string) {
	t.Helper()
	body := binary.BigEndian.AppendUint16(nil, 1)
	if c.version == 5 {
		body = append(body, 0)
	}
	body = append(binary.BigEndian.AppendUint16(body, uint16(len(filter))), filter...)
	body = append(body, 1)
	if _, err := c.Write(append(append([]byte{0x82}, remLen(len(body))...), body...)); err != nil {
		t.Fatal(err)
	}
	first, ack, err := c.readPacket()
	if err != nil || first != 0x90 || len(ack) < 3 || ack[len(ack)-1] != 1 {
		t.Fatalf("SUBACK for %s: packet %#x % x, %v", filter, first, ack, err)
	}
}

// TestSlowSubscriber pins down what the embedded broker does when a device
// stops reading: its pending writes fill and further messages to it are
// dropped and counted (Stats.Dropped), Publish does not block, and other
// devices keep getting their messages, 64 KiB ones included, through read and
// write buffers far smaller than that.
func TestSlowSubscriber(t *testing.T) {
	const pwSlow, pwFast = "slow1-secret-8c2e4a", "fast1-secret-39d7b1"
	creds := brokertest.Credentials(t, map[string]string{"slow1": pwSlow, "fast1": pwFast}, nil)
	b := brokertest.StartOptions(t, broker.Options{Credentials: creds,
		ReadBufferSize: 256, WriteBufferSize: 512, MaxPendingWrites: 4, MaxInflight: 1024})

	slow := dialRaw(t, b.Addr().String(), 4)
	if tc, ok := slow.Conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096) // fill the socket quickly: the client never reads again
	}
	if code, err := slow.connack("slow1", "slow1", pwSlow, false); err != nil || code != 0 {
		t.Fatalf("slow1 CONNACK %d, %v", code, err)
	}
	slow.subscribeRaw(t, broker.RequestTopic("slow1"))

	fast := mustConnect(t, brokertest.URL(b), "fast1", "fast1", pwFast)
	in := newInbox()
	subscribe(t, fast, broker.RequestTopic("fast1"), in)
	answers := make(chan []byte, 4)
	cancel, err := b.Subscribe(broker.ResponseFilter, func(_ string, p []byte) { answers <- p })
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()

	big := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	t.Run("full queue is reported", func(t *testing.T) {
		// A loopback socket takes a few MiB before the broker's writer
		// blocks; then the 4 pending writes fill.
		for i := 0; b.Stats().Dropped == 0; i++ {
			if err := b.Publish(broker.RequestTopic("slow1"), big, 1); err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
			if i == 2000 {
				t.Fatal("2,000 messages of 64 KiB to a client that does not read, and none was dropped")
			}
		}
	})
	t.Run("other devices are not held up", func(t *testing.T) {
		if err := b.Publish(broker.RequestTopic("fast1"), []byte("small request"), 1); err != nil {
			t.Fatalf("publish to fast1 while slow1 is stuck: %v", err)
		}
		in.wait(t, "fleetvault/v1/fast1/req small request")
	})
	t.Run("64 KiB through small buffers", func(t *testing.T) {
		if err := b.Publish(broker.RequestTopic("fast1"), big, 1); err != nil {
			t.Fatalf("publish 64 KiB to fast1: %v", err)
		}
		in.wait(t, "fleetvault/v1/fast1/req "+string(big))
		if err := publish(t, fast, broker.ResponseTopic("fast1"), 1, string(big)); err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-answers:
			if !bytes.Equal(p, big) {
				t.Errorf("the server got %d bytes, want the 64 KiB sent", len(p))
			}
		case <-time.After(waitFor):
			t.Fatal("the 64 KiB answer did not reach the server")
		}
	})
	t.Run("publishes go on after a drop", func(t *testing.T) {
		if err := b.Publish(broker.RequestTopic("fast1"), []byte("after"), 1); err != nil {
			t.Fatalf("publish after a drop to another client: %v", err)
		}
		in.wait(t, "fleetvault/v1/fast1/req after")
	})
}
