package coap

import (
	"net"
	"net/netip"
	"testing"
)

// clientHello is a DTLS record carrying the start of a ClientHello with
// message sequence seq and a client random filled with r.
func clientHello(seq byte, r byte) []byte {
	b := make([]byte, 13+12+2+32+8)
	b[0], b[1], b[2] = 22, 0xfe, 0xfd // handshake, DTLS 1.2
	b[13] = 1                         // client_hello
	b[18] = seq
	for i := 0; i < 32; i++ {
		b[27+i] = r
	}
	return b
}

// TestDatagramsHello: a device's socket opens a session for a first
// ClientHello, keeps it for a retransmission of that hello (the same
// random) and starts a new one for a new hello from the same peer.
func TestDatagramsHello(t *testing.T) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	d := newDatagrams(conn, true, 4, nil)
	defer d.Close()
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	accepted := func() *peerConn {
		select {
		case p := <-d.backlog:
			return p
		default:
			return nil
		}
	}
	for _, tc := range []struct {
		name      string
		datagram  []byte
		wantNew   bool
		wantPeers int
	}{
		{"first hello opens a session", clientHello(0, 1), true, 1},
		{"the same hello again is a retransmission", clientHello(0, 1), false, 1},
		{"the hello with the cookie goes to the session", clientHello(1, 1), false, 1},
		{"a new hello starts over", clientHello(0, 2), true, 1},
		{"another record goes to the session", []byte{23, 0xfe, 0xfd, 0, 1}, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d.deliver(from, tc.datagram)
			if p := accepted(); (p != nil) != tc.wantNew {
				t.Fatalf("new session %v, want %v", p != nil, tc.wantNew)
			}
			if n := d.peerCount(); n != tc.wantPeers {
				t.Fatalf("%d peers, want %d", n, tc.wantPeers)
			}
		})
	}
}
