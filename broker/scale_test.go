package broker_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/broker/brokertest"
)

// leanConnect opens a raw MQTT 3.1.1 connection as device id, subscribes to
// its request topic and leaves it idle: no goroutines, no buffers, so the
// memory measured is the broker's.
func leanConnect(addr, id, pw string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	str := func(b []byte, s string) []byte { return append(binary.BigEndian.AppendUint16(b, uint16(len(s))), s...) }
	body := str(nil, "MQTT")
	body = append(body, 4, 0xC2, 0, 0) // level 4; username, password, clean session; keepalive 0 (none)
	body = str(str(str(body, id), id), pw)
	pkt := append([]byte{0x10}, remLen(len(body))...)
	pkt = append(pkt, body...)
	sub := str([]byte{0, 1}, broker.RequestTopic(id))
	sub = append(sub, 1)
	pkt = append(pkt, 0x82)
	pkt = append(pkt, remLen(len(sub))...)
	pkt = append(pkt, sub...)
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(pkt); err != nil {
		c.Close()
		return nil, err
	}
	r := bufio.NewReaderSize(c, 16)
	ack := make([]byte, 4+5) // CONNACK (4) + SUBACK (5)
	if _, err := io.ReadFull(r, ack); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: read CONNACK/SUBACK: %w", id, err)
	}
	if ack[0] != 0x20 || ack[3] != 0 || ack[4] != 0x90 || ack[8] != 1 {
		c.Close()
		return nil, fmt.Errorf("%s: refused: % x", id, ack)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

func remLen(n int) []byte {
	var b []byte
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

func memInUse() (heap, stack uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse, m.StackInuse
}

// TestIdleConnectionMemory measures the broker's memory per idle device
// connection (docs/broker.md). FLEETVAULT_BROKER_CONNS sets the count
// (default 5000); each connection needs two file descriptors in this process.
func TestIdleConnectionMemory(t *testing.T) {
	n := connsFromEnv(t, scaleConns(5000))
	needFiles(t, 2*n) // both ends in this process
	creds, ids, secret := manyDevices(t, n)
	for _, tc := range []struct {
		name string
		opts broker.Options
	}{
		{"tuned defaults", broker.Options{}},
		{"mochi defaults", broker.Options{ReadBufferSize: 2048, WriteBufferSize: 2048, MaxPendingWrites: 8192, MaxInflight: 8192}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Credentials = creds
			measureIdle(t, brokertest.StartOptions(t, tc.opts), ids, secret)
		})
	}
}

func measureIdle(t *testing.T, b *broker.Broker, ids []string, secret string) {
	n := len(ids)
	addr := b.Addr().String()
	heap0, stack0 := memInUse()
	goroutines := runtime.NumGoroutine()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	start := time.Now()
	for _, id := range ids {
		c, err := leanConnect(addr, id, secret)
		if err != nil {
			t.Fatalf("after %d connections: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	elapsed := time.Since(start)
	poll(t, "all connected", func() bool { return b.Stats().Connected == int64(n) })
	heap1, stack1 := memInUse()
	heap, stack := float64(heap1-heap0)/float64(n), float64(stack1-stack0)/float64(n)
	t.Logf("%d idle device connections: %.0f bytes/connection (heap %.0f + stacks %.0f; broker and lean client), %.1f goroutines/connection, connected in %v",
		n, heap+stack, heap, stack, float64(runtime.NumGoroutine()-goroutines)/float64(n), elapsed.Round(time.Millisecond))
	t.Logf("extrapolated to 100,000 devices: %.2f GiB", (heap+stack)*100000/(1<<30))
}

// connsFromEnv returns FLEETVAULT_BROKER_CONNS, or def when it is unset.
// scaleConns is a scale test's connection count: full under go test, 200
// under -short (make test), where the test still runs every step and fails
// on any connection error but its figures mean little.
func scaleConns(full int) int {
	if testing.Short() {
		return 200
	}
	return full
}

func connsFromEnv(t *testing.T, def int) int {
	t.Helper()
	s := os.Getenv("FLEETVAULT_BROKER_CONNS")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("FLEETVAULT_BROKER_CONNS=%q is not a positive number", s)
	}
	return n
}

// manyDevices makes n device identities dev-000000... sharing one secret.
func manyDevices(t *testing.T, n int) (creds broker.StaticCredentials, ids []string, secret string) {
	t.Helper()
	secret = broker.NewSecret()
	h, err := broker.HashPassword(secret)
	if err != nil {
		t.Fatal(err)
	}
	creds = broker.StaticCredentials{}
	ids = make([]string, n)
	for i := range ids {
		ids[i] = deviceName(i)
		creds[ids[i]] = broker.Identity{Name: ids[i], Role: broker.RoleDevice, PasswordHash: h}
	}
	return creds, ids, secret
}

func deviceName(i int) string { return fmt.Sprintf("dev-%06d", i) }
