package catalog

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"reflect"
	"testing"

	"github.com/fleetvault/fleetvault/tagmatch"
)

func TestRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		r    record
	}{
		{"empty", record{Client: "c", Name: "n"}},
		{"full", record{Client: "home1", Name: "settings", Type: "t", Owner: "o", Location: "l", Group: "g", Job: "j",
			Time: -5, Expiry: 1 << 60, Size: 12345, Ref: [32]byte{1, 2, 3},
			Tag: tagmatch.Tag{{Key: "zone", Value: "South"}, {Key: "", Value: ""}}, Optional: map[string]string{"a": "1", "b": ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeRecord(tt.r.encode())
			if err != nil || !reflect.DeepEqual(got, tt.r) {
				t.Fatalf("decode(encode) = %+v, %v; want %+v", got, err, tt.r)
			}
		})
	}
}

func TestRecordDamaged(t *testing.T) {
	good := record{Client: "home1", Name: "settings", Tag: tagmatch.Tag{{Key: "k", Value: "v"}}}.encode()
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"bad version", withCRC(append([]byte{9}, good[1:len(good)-4]...))},
		{"flipped bit", flip(good, 3)},
		{"truncated", withCRC(good[:len(good)-7])},
		{"trailing", withCRC(append(append([]byte(nil), good[:len(good)-4]...), 0))},
		{"huge length", withCRC([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeRecord(tt.b); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
		})
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(record{Client: "home1", Name: "settings", Tag: tagmatch.Tag{{Key: "k", Value: "v"}}, Optional: map[string]string{"x": "y"}}.encode())
	f.Add([]byte{1})
	f.Add(withCRC([]byte{1, 1, 'c', 1, 'n', 0, 0, 0, 0, 0, 0, 0, 0}))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		again, err := decodeRecord(r.encode())
		if err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("re-encoding a decoded record changes it: %+v vs %+v (%v)", again, r, err)
		}
	})
}

func withCRC(b []byte) []byte {
	return binary.LittleEndian.AppendUint32(append([]byte(nil), b...), crc32.Checksum(b, castagnoli))
}

func flip(b []byte, i int) []byte {
	b = append([]byte(nil), b...)
	b[i] ^= 0x10
	return b
}
