package broker

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadConnect: whatever a client sends first, readConnect returns a
// whole CONNECT within the limit that is exactly the start of the input, or
// an error; it never panics and never reads past the packet.
func FuzzReadConnect(f *testing.F) {
	f.Add([]byte{0x10, 0x00})
	f.Add([]byte{0x10, 0x0c, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 0, 0x82})
	f.Add([]byte{0x10, 0xff, 0xff, 0xff, 0x7f})
	f.Add([]byte{0x10, 0x80, 0x80, 0x80, 0x80, 0x01})
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 256
		r := bytes.NewReader(data)
		pkt, err := readConnect(r, limit)
		if err != nil {
			if pkt != nil {
				t.Fatalf("packet % x with error %v", pkt, err)
			}
			if !errors.Is(err, errNotConnect) && !errors.Is(err, errConnectTooLarge) &&
				!errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if len(pkt) > limit || pkt[0] != 0x10 || !bytes.HasPrefix(data, pkt) {
			t.Fatalf("packet % x from input % x", pkt, data)
		}
		if read := len(data) - r.Len(); read != len(pkt) {
			t.Fatalf("read %d bytes for a packet of %d", read, len(pkt))
		}
	})
}
