package leanmqtt

import (
	"bufio"
	"bytes"
	"testing"
)

// FuzzReadPacket feeds arbitrary bytes to the packet reader: it must return
// packets or errors, never panic.
func FuzzReadPacket(f *testing.F) {
	f.Add([]byte{0x20, 0x02, 0x00, 0x00}, byte(4))                                 // CONNACK
	f.Add([]byte{0x32, 0x08, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x01, 'x'}, byte(4)) // PUBLISH QoS 1
	f.Add([]byte{0x40, 0x02, 0x00, 0x01}, byte(5))                                 // PUBACK
	f.Add([]byte{0x90, 0x03, 0x00, 0x01, 0x80}, byte(5))                           // SUBACK refused
	f.Add([]byte{0xe0, 0x00}, byte(5))                                             // DISCONNECT
	f.Fuzz(func(t *testing.T, data []byte, version byte) {
		c := &Conn{version: 4}
		if version%2 == 1 {
			c.version = 5
		}
		br := bufio.NewReader(bytes.NewReader(data))
		for i := 0; i < 16; i++ {
			if _, err := c.readPacket(br); err != nil {
				return
			}
		}
	})
}
