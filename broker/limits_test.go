package broker_test

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/broker/brokertest"
)

// Strong device passwords for the limit tests.
const (
	pwDev1 = "dev1-secret-4f9c2a"
	pwDev2 = "dev2-secret-b71e08"
)

func limitCreds(t *testing.T) broker.StaticCredentials {
	t.Helper()
	return brokertest.Credentials(t, map[string]string{"dev1": pwDev1, "dev2": pwDev2}, nil)
}

// needFiles skips when this process may not open n more file descriptors.
func needFiles(t *testing.T, n int) {
	t.Helper()
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < uint64(n+200) {
		t.Skipf("ulimit -n is %d; this test needs %d (raise it: ulimit -n %d)", rl.Cur, n+200, n+200)
	}
}

// waitClosed reads from every conn until the broker closes it, failing the
// test if any is still open after limit. A read timeout is not a close.
func waitClosed(t *testing.T, conns []net.Conn, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	open := 0
	buf := make([]byte, 64)
	for _, c := range conns {
		_ = c.SetReadDeadline(deadline)
		for {
			_, err := c.Read(buf)
			if err == nil {
				continue // a CONNACK or the like; wait for the close
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				open++
			}
			break
		}
	}
	if open > 0 {
		t.Fatalf("%d of %d connections still open after %v", open, len(conns), limit)
	}
}

func dialN(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := net.DialTimeout("tcp", addr, waitFor)
		if err != nil {
			t.Fatalf("after %d connections: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	return conns
}

// TestIdleBeforeConnectClosedAtDeadline: connections that never send
// CONNECT are closed when ConnectTimeout runs out, and a real device still
// gets in meanwhile.
func TestIdleBeforeConnectClosedAtDeadline(t *testing.T) {
	const n = 2000
	needFiles(t, 2*n)
	b := brokertest.StartOptions(t, broker.Options{Credentials: limitCreds(t), ConnectTimeout: 500 * time.Millisecond})
	conns := dialN(t, b.Addr().String(), n)
	mustConnect(t, brokertest.URL(b), "dev1", "dev1", pwDev1)
	waitClosed(t, conns, 60*time.Second)
	poll(t, "every timeout counted", func() bool {
		s := b.Stats()
		return s.PreAuthTimeouts == n && s.Unauthenticated == 0
	})
	if !b.Connected("dev1") {
		t.Error("the real device lost its connection")
	}
}

// TestStalledConnectMemory: clients that announce a big CONNECT, send part
// of it and stall cost the broker little memory and are closed: at once when
// the announced size is over the pre-login limit, at the deadline otherwise.
func TestStalledConnectMemory(t *testing.T) {
	const n = 1000
	const limit = 50 << 20
	needFiles(t, 2*n)
	for _, tc := range []struct {
		name           string
		announce, send int
		counted        func(broker.Stats) int64
	}{
		{"announces 2 MiB (MaxPacketSize), sends 1.9 MB, stalls", broker.DefaultMaxPacketSize - 8, 1_900_000, func(s broker.Stats) int64 { return s.PreAuthTooLarge }},
		{"announces 4,000 bytes, sends 3,000, stalls", 4000, 3000, func(s broker.Stats) int64 { return s.PreAuthTimeouts }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := brokertest.StartOptions(t, broker.Options{Credentials: limitCreds(t), ConnectTimeout: 5 * time.Second})
			heap0, stack0 := memInUse()
			conns := dialN(t, b.Addr().String(), n)
			header := append([]byte{0x10}, remLen(tc.announce)...)
			chunk := make([]byte, 64<<10)
			var wg sync.WaitGroup
			var refused atomic.Int64
			for _, c := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_ = c.SetWriteDeadline(time.Now().Add(60 * time.Second))
					if _, err := c.Write(header); err != nil {
						refused.Add(1)
						return
					}
					for sent := 0; sent < tc.send; {
						k, err := c.Write(chunk[:min(len(chunk), tc.send-sent)])
						sent += k
						if err != nil {
							refused.Add(1)
							return
						}
					}
				}()
			}
			wg.Wait()
			heap1, stack1 := memInUse()
			grew := int64(heap1+stack1) - int64(heap0+stack0)
			t.Logf("%d stalled clients: broker and clients grew by %.1f MiB (heap %+d, stacks %+d); %d writes refused by the broker",
				n, float64(grew)/(1<<20), int64(heap1)-int64(heap0), int64(stack1)-int64(stack0), refused.Load())
			if grew > limit {
				t.Errorf("memory grew by %.1f MiB, want under %d MiB", float64(grew)/(1<<20), limit>>20)
			}
			waitClosed(t, conns, 60*time.Second)
			poll(t, "every close counted", func() bool { return tc.counted(b.Stats()) == n && b.Stats().Unauthenticated == 0 })
		})
	}
}

// TestLockout: a burst of wrong passwords locks the identity (or, with
// LimitLoopback, the address) out; the right password is refused with a
// protocol-correct CONNACK during the lockout and accepted after it.
func TestLockout(t *testing.T) {
	const (
		ok          = 0x00
		v3Refused   = 0x05 // 3.1.1: not authorized
		v5Wrong     = 0x86 // 5: bad user name or password
		v5LockedOut = 0x9F // 5: connection rate exceeded
	)
	t.Run("client id", func(t *testing.T) {
		clock := newFakeClock()
		b := brokertest.StartOptions(t, broker.Options{Credentials: limitCreds(t), Now: clock.Now})
		addr := b.Addr().String()
		connack := func(version byte, id, pw string) byte {
			t.Helper()
			code, err := dialRaw(t, addr, version).connack(id, id, pw, true)
			if err != nil {
				t.Fatal(err)
			}
			return code
		}
		for i := range broker.DefaultLockoutThreshold {
			if code := connack(4, "dev1", "wrong-password-guess"); code != v3Refused {
				t.Fatalf("wrong password %d: CONNACK %#x, want %#x", i+1, code, v3Refused)
			}
		}
		if s := b.Stats(); s.LockoutsClientID != 1 {
			t.Fatalf("lockouts %d after %d failures, want 1", s.LockoutsClientID, broker.DefaultLockoutThreshold)
		}
		before := b.Stats().AuthLockedOut
		if code := connack(4, "dev1", pwDev1); code != v3Refused {
			t.Errorf("right password during the lockout, 3.1.1: CONNACK %#x, want %#x", code, v3Refused)
		}
		if code := connack(5, "dev1", pwDev1); code != v5LockedOut {
			t.Errorf("right password during the lockout, 5: CONNACK %#x, want %#x", code, v5LockedOut)
		}
		if got := b.Stats().AuthLockedOut - before; got != 2 {
			t.Errorf("locked-out refusals counted %d, want 2", got)
		}
		if code := connack(4, "dev2", pwDev2); code != ok {
			t.Errorf("another device from the same (loopback) address: CONNACK %#x, want accepted", code)
		}
		clock.Advance(broker.DefaultLockoutDuration)
		if code := connack(4, "dev1", pwDev1); code != ok {
			t.Errorf("right password after the lockout: CONNACK %#x, want accepted", code)
		}
		if code := connack(5, "dev1", "wrong-password-guess"); code != v5Wrong {
			t.Errorf("wrong password, 5: CONNACK %#x, want %#x", code, v5Wrong)
		}
	})
	t.Run("repeated lockouts double", func(t *testing.T) {
		clock := newFakeClock()
		b := brokertest.StartOptions(t, broker.Options{Credentials: limitCreds(t), Now: clock.Now, LockoutThreshold: 3})
		addr := b.Addr().String()
		burst := func() {
			for range 3 {
				if _, err := dialRaw(t, addr, 4).connack("dev1", "dev1", "wrong-password-guess", true); err != nil {
					t.Fatal(err)
				}
			}
		}
		right := func() byte {
			code, err := dialRaw(t, addr, 4).connack("dev1", "dev1", pwDev1, true)
			if err != nil {
				t.Fatal(err)
			}
			return code
		}
		burst()
		clock.Advance(broker.DefaultLockoutDuration)
		burst()
		clock.Advance(broker.DefaultLockoutDuration)
		if code := right(); code != v3Refused {
			t.Errorf("one lockout period into the second lockout: CONNACK %#x, want still refused", code)
		}
		clock.Advance(broker.DefaultLockoutDuration)
		if code := right(); code != ok {
			t.Errorf("after twice the lockout period: CONNACK %#x, want accepted", code)
		}
		if s := b.Stats(); s.LockoutsClientID != 2 {
			t.Errorf("lockouts %d, want 2", s.LockoutsClientID)
		}
	})
	t.Run("address", func(t *testing.T) {
		clock := newFakeClock()
		b := brokertest.StartOptions(t, broker.Options{Credentials: limitCreds(t), Now: clock.Now,
			LimitLoopback: true, LockoutAddrThreshold: 5})
		addr := b.Addr().String()
		for _, id := range []string{"guess1", "guess2", "guess3", "guess4", "guess5"} {
			if code, err := dialRaw(t, addr, 4).connack(id, id, "whatever-it-is", true); err != nil || code != v3Refused {
				t.Fatalf("unknown identity %s: CONNACK %#x, %v; want %#x", id, code, err, v3Refused)
			}
		}
		if s := b.Stats(); s.LockoutsAddress != 1 {
			t.Fatalf("address lockouts %d, want 1", s.LockoutsAddress)
		}
		if code, err := dialRaw(t, addr, 5).connack("dev2", "dev2", pwDev2, true); err != nil || code != v5LockedOut {
			t.Errorf("a real device from the locked-out address: CONNACK %#x, %v; want %#x", code, err, v5LockedOut)
		}
		clock.Advance(broker.DefaultLockoutDuration)
		if code, err := dialRaw(t, addr, 5).connack("dev2", "dev2", pwDev2, true); err != nil || code != ok {
			t.Errorf("after the lockout: CONNACK %#x, %v; want accepted", code, err)
		}
	})
}

// TestPerAddressLimits: one address may hold only so many connections that
// have not authenticated, and open new ones only so fast.
func TestPerAddressLimits(t *testing.T) {
	t.Run("unauthenticated connections", func(t *testing.T) {
		b := brokertest.StartOptions(t, broker.Options{Credentials: limitCreds(t), LimitLoopback: true, MaxUnauthenticatedPerAddr: 10})
		idle := dialN(t, b.Addr().String(), 10)
		poll(t, "10 pending", func() bool { return b.Stats().Unauthenticated == 10 })
		extra := dialN(t, b.Addr().String(), 1)
		waitClosed(t, extra, waitFor)
		if s := b.Stats(); s.PreAuthAddrLimited != 1 {
			t.Errorf("address-limited closes %d, want 1", s.PreAuthAddrLimited)
		}
		idle[0].Close()
		poll(t, "a slot freed", func() bool { return b.Stats().Unauthenticated == 9 })
		mustConnect(t, brokertest.URL(b), "dev1", "dev1", pwDev1)
		if s := b.Stats(); s.Unauthenticated != 9 {
			t.Errorf("unauthenticated %d after a device logged in, want 9", s.Unauthenticated)
		}
	})
	t.Run("connection rate", func(t *testing.T) {
		clock := newFakeClock()
		b := brokertest.StartOptions(t, broker.Options{Credentials: limitCreds(t), LimitLoopback: true,
			ConnectRate: 1, ConnectBurst: 3, Now: clock.Now})
		for i := range 3 {
			if _, err := connect(t, brokertest.URL(b), "dev1", "dev1", pwDev1); err != nil {
				t.Fatalf("connection %d within the burst: %v", i+1, err)
			}
		}
		waitClosed(t, dialN(t, b.Addr().String(), 1), waitFor)
		if s := b.Stats(); s.PreAuthRateLimited != 1 {
			t.Errorf("rate-limited closes %d, want 1", s.PreAuthRateLimited)
		}
		clock.Advance(time.Second)
		mustConnect(t, brokertest.URL(b), "dev1", "dev1", pwDev1)
	})
}

// TestProtocolAnswers: the odd cases get answers MQTT defines.
func TestProtocolAnswers(t *testing.T) {
	b := brokertest.StartOptions(t, broker.Options{Credentials: limitCreds(t)})
	addr := b.Addr().String()
	t.Run("connect", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			version  byte
			user, pw string
			want     byte
		}{
			{"3.1.1 empty password", 4, "dev1", "", 0x05},
			{"5 empty password", 5, "dev1", "", 0x86},
			{"3.1.1 wrong password", 4, "dev1", "not-the-password", 0x05},
			{"5 wrong password", 5, "dev1", "not-the-password", 0x86},
			{"3.1.1 right password", 4, "dev1", pwDev1, 0x00},
			{"5 right password", 5, "dev1", pwDev1, 0x00},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, err := dialRaw(t, addr, tc.version).connack(tc.user, tc.user, tc.pw, true)
				if err != nil {
					t.Fatal(err)
				}
				if code != tc.want {
					t.Errorf("CONNACK %#x, want %#x", code, tc.want)
				}
			})
		}
	})
	t.Run("publish", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			version byte
			topic   string
			want    byte
		}{
			{"3.1.1 QoS 1 to $SYS/x", 4, "$SYS/x", 0x00},
			{"5 QoS 1 to $SYS/x", 5, "$SYS/x", 0x87},
			{"3.1.1 QoS 1 to another device's response topic", 4, broker.ResponseTopic("dev2"), 0x00},
			{"5 QoS 1 to another device's response topic", 5, broker.ResponseTopic("dev2"), 0x87},
			{"3.1.1 QoS 1 to its own response topic", 4, broker.ResponseTopic("dev1"), 0x00},
			{"5 QoS 1 to its own response topic", 5, broker.ResponseTopic("dev1"), 0x00},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := dialRaw(t, addr, tc.version)
				if code, err := c.connack("dev1", "dev1", pwDev1, true); err != nil || code != 0 {
					t.Fatalf("CONNACK %#x, %v", code, err)
				}
				code, err := c.publishAck(tc.topic, 7)
				if err != nil {
					t.Fatal(err)
				}
				if code != tc.want {
					t.Errorf("PUBACK reason %#x, want %#x", code, tc.want)
				}
				// The connection still works.
				if code, err := c.publishAck(broker.ResponseTopic("dev1"), 8); err != nil || code != 0 {
					t.Errorf("publish on the same connection afterwards: PUBACK %#x, %v", code, err)
				}
			})
		}
	})
}

// TestConnectDeadlineEveryListener: the deadline and the pre-login limits
// hold on every listener, TLS (before and after the handshake) and
// WebSocket (after the upgrade) included.
func TestConnectDeadlineEveryListener(t *testing.T) {
	b := brokertest.StartOptions(t, broker.Options{Credentials: limitCreds(t), ConnectTimeout: 300 * time.Millisecond,
		TLSAddr: "127.0.0.1:0", SelfSigned: true, WSAddr: "127.0.0.1:0"})
	for _, tc := range []struct {
		name string
		dial func() (net.Conn, error)
	}{
		{"tcp", func() (net.Conn, error) { return net.Dial("tcp", b.Addr().String()) }},
		{"tls, no handshake", func() (net.Conn, error) { return net.Dial("tcp", b.TLSAddr().String()) }},
		{"tls, after the handshake", func() (net.Conn, error) {
			return tls.Dial("tcp", b.TLSAddr().String(), &tls.Config{RootCAs: b.CertPool(), ServerName: "localhost"})
		}},
		{"websocket, after the upgrade", func() (net.Conn, error) {
			d := websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: waitFor}
			c, _, err := d.Dial("ws://"+b.WSAddr().String()+"/mqtt", nil)
			if err != nil {
				return nil, err
			}
			return c.NetConn(), nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := b.Stats().PreAuthTimeouts
			c, err := tc.dial()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			waitClosed(t, []net.Conn{c}, waitFor)
			poll(t, "the timeout counted", func() bool { return b.Stats().PreAuthTimeouts == before+1 })
		})
	}
	t.Run("websocket, CONNECT too large", func(t *testing.T) {
		before := b.Stats().PreAuthTooLarge
		d := websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: waitFor}
		c, _, err := d.Dial("ws://"+b.WSAddr().String()+"/mqtt", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.WriteMessage(websocket.BinaryMessage, append([]byte{0x10}, remLen(1<<20)...)); err != nil {
			t.Fatal(err)
		}
		poll(t, "the oversized CONNECT refused", func() bool { return b.Stats().PreAuthTooLarge == before+1 })
		waitClosed(t, []net.Conn{c.NetConn()}, waitFor)
	})
}

// TestCloseEndsPendingConnections: Close does not leave connections that
// are still waiting for their CONNECT to linger until the deadline.
func TestCloseEndsPendingConnections(t *testing.T) {
	b := brokertest.StartOptions(t, broker.Options{Credentials: limitCreds(t), ConnectTimeout: time.Hour})
	conns := dialN(t, b.Addr().String(), 3)
	poll(t, "3 pending", func() bool { return b.Stats().Unauthenticated == 3 })
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, conns, waitFor)
	if s := b.Stats(); s.Unauthenticated != 0 {
		t.Errorf("unauthenticated %d after Close, want 0", s.Unauthenticated)
	}
}
