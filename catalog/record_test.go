package catalog

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"reflect"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/tagmatch"
)

func TestRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		r    record
	}{
		{"empty", record{Client: "c", Name: "n", Times: []int64{0}, Jobs: []string{""}}},
		{"full", record{Client: "home1", Name: "settings", Type: "t", Owner: "o", Location: "l", Group: "g", Jobs: []string{"j"},
			Times: []int64{-5}, Expiry: 1 << 60, Size: 12345, Ref: [32]byte{1, 2, 3}, Prev: []byte{0, 0, 0, 0, 0, 1, 0, 0},
			Tag: tagmatch.Tag{{Key: "zone", Value: "South"}, {Key: "", Value: ""}}, Optional: map[string]string{"a": "1", "b": ""}}},
		{"daily run", record{Client: "c", Name: "n", Times: []int64{day, 2 * day, 3 * day, 4 * day}, Jobs: []string{"", "", "", ""}}},
		{"irregular run, jobs", record{Client: "c", Name: "n", Times: []int64{-day, 0, 0, 7, day, 2 * day, 3 * day},
			Jobs: []string{"a", "b", "b", "", "c", "c", "a"}, Closed: true}},
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

const day = int64(24 * time.Hour)

// TestRecordVersion1 reads a record as the catalog wrote it before runs:
// a closed run of one piece.
func TestRecordVersion1(t *testing.T) {
	b := []byte{recordV1}
	for _, s := range []string{"home1", "settings", "t", "", "", "g", "job-1"} {
		b = appendString(b, s)
	}
	b = binary.AppendVarint(b, 5*day)  // time
	b = binary.AppendVarint(b, 0)      // expiry
	b = binary.AppendUvarint(b, 42)    // size
	b = append(b, make([]byte, 32)...) // content hash
	b = append(b, 0, 1)                // no previous, one tag pair
	b = appendString(appendString(b, "k"), "v")
	b = append(b, 0) // no optional fields
	got, err := decodeRecord(withCRC(b))
	want := record{Client: "home1", Name: "settings", Type: "t", Group: "g", Size: 42, Tag: tagmatch.Tag{{Key: "k", Value: "v"}},
		Times: []int64{5 * day}, Jobs: []string{"job-1"}, Closed: true}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("decode = %+v, %v; want %+v", got, err, want)
	}
}

// v2 builds a version 2 record's bytes from its run part.
func v2(run ...byte) []byte {
	b := []byte{recordV2, 1, 'c', 1, 'n', 0, 0, 0, 0, 0, 0}
	b = append(b, make([]byte, 32)...)
	b = append(b, 0, 0, 0) // no previous, tag or optional fields
	return withCRC(append(b, run...))
}

func TestRecordDamaged(t *testing.T) {
	good := record{Client: "home1", Name: "settings", Tag: tagmatch.Tag{{Key: "k", Value: "v"}}, Times: []int64{1}, Jobs: []string{""}}.encode()
	if _, err := decodeRecord(v2(0, 1, 2, 0, 1, 1, 0)); err != nil {
		t.Fatalf("the test's own valid record does not decode: %v", err)
	}
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
		{"unknown flag", v2(2, 1, 2, 0, 1, 1, 0)},
		{"no pieces", v2(0, 0, 2, 0, 0)},
		{"too many pieces", v2(0, 0x81, 0x80, 0x04, 2, 0, 0)},
		{"gaps short of count", v2(0, 3, 2, 1, 5, 1, 1, 1, 0)},
		{"gaps past count", v2(0, 2, 2, 1, 5, 2, 1, 2, 0)},
		{"zero repeat", v2(0, 1, 2, 1, 5, 0, 1, 1, 0)},
		{"jobs short of count", v2(0, 2, 2, 1, 5, 1, 1, 1, 0)},
		{"jobs past count", v2(0, 1, 2, 0, 1, 2, 0)},
		{"repeated job pair", v2(0, 2, 2, 1, 5, 1, 2, 1, 0, 1, 0)},
		{"time overflows", v2(0, 2, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 1, 1, 2, 0)},
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
	f.Add(record{Client: "home1", Name: "settings", Tag: tagmatch.Tag{{Key: "k", Value: "v"}}, Optional: map[string]string{"x": "y"},
		Times: []int64{1, 5, 9, 9}, Jobs: []string{"a", "a", "b", ""}}.encode())
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
