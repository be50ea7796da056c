package agent

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/fleetvault/fleetvault/tagmatch"
)

// cborHex decodes hex written with spaces for readability.
func cborHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// nested returns a settings document nested depth maps deep.
func nested(depth int) []byte {
	var b []byte
	for range depth {
		b = append(b, 0xa1, 0x61, 'k') // {"k": ...
	}
	return append(b, 0x01)
}

func TestRequestRoundTrip(t *testing.T) {
	settings, err := EncodeSettings(Settings{"setpoint": 21.5, "mode": "eco"})
	if err != nil {
		t.Fatal(err)
	}
	in := &Request{ID: "c1", Ident: "mqtt://home1?WRITE:SETTINGS?TAG+SETTINGS", Job: "j1", Settings: settings, Hash: Hash(settings)}
	b, err := EncodeRequest(in)
	if err != nil {
		t.Fatal(err)
	}
	if in.V != Version {
		t.Errorf("EncodeRequest left V = %d, want %d", in.V, Version)
	}
	out, err := DecodeRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if out.V != Version || out.ID != in.ID || out.Ident != in.Ident || out.Job != in.Job ||
		!bytes.Equal(out.Settings, in.Settings) || !bytes.Equal(out.Hash, in.Hash) {
		t.Errorf("round trip: got %+v, want %+v", out, in)
	}
}

func TestResponseRoundTrip(t *testing.T) {
	in := &Response{
		ID: "c1", Device: "home1", Caps: Capabilities(),
		Tag: tagmatch.Tag{{Key: "manufacturer", Value: "Acme Corp."}, {Key: "zone", Value: "South"}},
		Err: &Error{Code: CodeRejected, Message: "setpoint out of range"},
	}
	b, err := EncodeResponse(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	if out.V != Version || out.ID != "c1" || out.Device != "home1" || len(out.Caps) != 4 ||
		len(out.Tag) != 2 || out.Tag[1] != in.Tag[1] || out.Err == nil || *out.Err != *in.Err {
		t.Errorf("round trip: got %+v, want %+v", out, in)
	}
	if got := out.Err.Error(); got != "device error rejected: setpoint out of range" {
		t.Errorf("Error() = %q", got)
	}
	if got := (&Error{Code: CodeInternal}).Error(); got != "device error internal" {
		t.Errorf("Error() without message = %q", got)
	}
}

func TestDecodeLimits(t *testing.T) {
	big := make([]byte, MaxMessageBytes+1)
	tests := []struct {
		name string
		msg  []byte
	}{
		{"empty", nil},
		{"oversized", big},
		{"not a map", cborHex(t, "83 01 02 03")},
		{"truncated", cborHex(t, "a2 61 76 01 62 69 64")},
		{"trailing bytes", cborHex(t, "a1 61 76 01 00")},
		{"indefinite length map", cborHex(t, "bf 61 76 01 ff")},
		{"duplicate key", cborHex(t, "a2 61 76 01 61 76 02")},
		{"cbor tag", cborHex(t, "a1 61 76 c1 01")},
		{"version is text", cborHex(t, "a1 61 76 61 31")},
		{"invalid utf-8 id", cborHex(t, "a1 62 69 64 62 ff fe")},
		{"too deep", append(cborHex(t, "a1 61 78"), nested(MaxNesting+1)...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeRequest(tc.msg); !errors.Is(err, ErrMalformed) {
				t.Errorf("DecodeRequest: err = %v, want ErrMalformed", err)
			}
			if _, err := DecodeResponse(tc.msg); !errors.Is(err, ErrMalformed) {
				t.Errorf("DecodeResponse: err = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestDecodeIgnoresUnknownFields(t *testing.T) {
	// {"v": 1, "id": "c9", "future": [1, 2], "ident": "home1?READ:SETTINGS?TAG"}
	msg := cborHex(t, "a4 61 76 01 62 69 64 62 63 39 66 66 75 74 75 72 65 82 01 02 65 69 64 65 6e 74 77"+
		hex.EncodeToString([]byte("home1?READ:SETTINGS?TAG")))
	req, err := DecodeRequest(msg)
	if err != nil {
		t.Fatal(err)
	}
	if req.V != 1 || req.ID != "c9" || req.Ident != "home1?READ:SETTINGS?TAG" {
		t.Errorf("got %+v", req)
	}
}

func TestMapPairLimit(t *testing.T) {
	s := Settings{}
	for i := range MaxMapPairs + 1 {
		s[strconv.Itoa(i)] = i
	}
	b, err := encMode.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeSettings(b); !errors.Is(err, ErrMalformed) {
		t.Errorf("settings with %d pairs: err = %v, want ErrMalformed", len(s), err)
	}
}

func TestSettingsDeterministic(t *testing.T) {
	a := Settings{"b": 1, "a": "x", "nested": map[string]any{"z": true, "y": []any{1, 2}}, "aa": 2.5}
	b := Settings{"aa": 2.5, "nested": map[string]any{"y": []any{1, 2}, "z": true}, "a": "x", "b": 1}
	ea, err := EncodeSettings(a)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := EncodeSettings(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ea, eb) || !bytes.Equal(Hash(ea), Hash(eb)) {
		t.Fatalf("equal settings encode differently:\n%x\n%x", ea, eb)
	}
	// Core deterministic order: shorter keys first, then bytewise.
	if want := cborHex(t, "a4 61 61 61 78 61 62 01 62 61 61 f9 41 00"); !bytes.HasPrefix(ea, want) {
		t.Errorf("encoding %x does not start with %x", ea, want)
	}
	empty, err := EncodeSettings(nil)
	if err != nil || !bytes.Equal(empty, []byte{0xa0}) {
		t.Errorf("EncodeSettings(nil) = %x, %v; want a0", empty, err)
	}
}

func TestDecodeSettings(t *testing.T) {
	tests := []struct {
		name    string
		doc     []byte
		wantErr bool
	}{
		{"map", cborHex(t, "a1 64 6d 6f 64 65 63 65 63 6f"), false},
		{"empty map", cborHex(t, "a0"), false},
		{"null", cborHex(t, "f6"), true},
		{"array", cborHex(t, "80"), true},
		{"integer keys", cborHex(t, "a1 01 02"), true},
		{"too deep", nested(MaxNesting + 1), true},
		{"oversized", append(cborHex(t, "a1 61 6b 5a 00 08 00 00"), make([]byte, MaxSettingsBytes)...), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeSettings(tc.doc)
			if gotErr := err != nil; gotErr != tc.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Errorf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestEncodeSettingsLimit(t *testing.T) {
	if _, err := EncodeSettings(Settings{"blob": make([]byte, MaxSettingsBytes)}); err == nil {
		t.Error("settings over MaxSettingsBytes encoded without error")
	}
}

func TestCanonicalSettings(t *testing.T) {
	// {"b": 1, "a": 2} in non-canonical key order.
	messy := cborHex(t, "a2 61 62 01 61 61 02")
	c, err := CanonicalSettings(messy)
	if err != nil {
		t.Fatal(err)
	}
	if want := cborHex(t, "a2 61 61 02 61 62 01"); !bytes.Equal(c, want) {
		t.Errorf("CanonicalSettings = %x, want %x", c, want)
	}
	again, err := CanonicalSettings(c)
	if err != nil || !bytes.Equal(again, c) {
		t.Errorf("CanonicalSettings of canonical = %x, %v", again, err)
	}
	if _, err := CanonicalSettings(cborHex(t, "80")); !errors.Is(err, ErrMalformed) {
		t.Errorf("CanonicalSettings(array): err = %v, want ErrMalformed", err)
	}
}

func TestScanID(t *testing.T) {
	oversized := append(cborHex(t, "a3 61 76 01 62 69 64 62 63 37 68 73 65 74 74 69 6e 67 73 5a 00 10 00 00"), make([]byte, 1<<20)...)
	tests := []struct {
		name string
		msg  []byte
		want string
	}{
		{"id after version", cborHex(t, "a2 61 76 01 62 69 64 62 63 37"), "c7"},
		{"id after nested junk", cborHex(t, "a2 61 78 a1 61 79 82 01 c1 02 62 69 64 61 41"), "A"},
		{"oversized settings after id", oversized, "c7"},
		{"no id", cborHex(t, "a1 61 76 01"), ""},
		{"id not text", cborHex(t, "a1 62 69 64 01"), ""},
		{"id invalid utf-8", cborHex(t, "a1 62 69 64 62 ff fe"), ""},
		{"not a map", cborHex(t, "82 01 02"), ""},
		{"truncated before id", cborHex(t, "a2 61 76 5a 00 00 ff ff"), ""},
		{"reserved info", cborHex(t, "a1 61 76 1c"), ""},
		{"huge array claim", cborHex(t, "a2 61 78 9b ff ff ff ff ff ff ff ff"), ""},
		{"empty", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := scanID(tc.msg); got != tc.want {
				t.Errorf("scanID = %q, want %q", got, tc.want)
			}
		})
	}
}

func FuzzDecodeRequest(f *testing.F) {
	seed, _ := EncodeRequest(&Request{ID: "c1", Ident: "mqtt://d1?WRITE:SETTINGS?TAG+SETTINGS", Job: "j", Settings: []byte{0xa0}, Hash: Hash([]byte{0xa0})})
	f.Add(seed)
	f.Add([]byte{0xa1, 0x61, 0x76, 0x01})
	f.Add(nested(MaxNesting + 2))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := DecodeRequest(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		again, err := EncodeRequest(req)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := DecodeRequest(again); err != nil {
			t.Fatalf("decode re-encoded %x: %v", again, err)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	seed, _ := EncodeResponse(&Response{ID: "c1", Device: "d1", Caps: Capabilities(), Tag: tagmatch.Tag{{Key: "k", Value: "v"}}, Err: &Error{Code: CodeConflict}})
	f.Add(seed)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := DecodeResponse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if resp.Err != nil {
			_ = resp.Err.Error()
		}
		if _, err := EncodeResponse(resp); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
	})
}

func FuzzDecodeSettings(f *testing.F) {
	seed, _ := EncodeSettings(Settings{"setpoint": 21.5, "schedule": []any{"06:00", 19}, "eco": map[string]any{"on": true}})
	f.Add(seed)
	f.Add([]byte{0xa2, 0x61, 0x62, 0x01, 0x61, 0x61, 0x02})
	f.Add(nested(MaxNesting))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := CanonicalSettings(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !strings.Contains(err.Error(), "settings") {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		// The canonical form is a fixed point: it hashes alike however often it is redone.
		again, err := CanonicalSettings(c)
		if err != nil {
			t.Fatalf("canonical form %x does not decode: %v", c, err)
		}
		if !bytes.Equal(again, c) {
			t.Fatalf("canonical form is not stable: %x then %x", c, again)
		}
	})
}

// FuzzScanID: the id scan agrees with the full decoder on every message the
// decoder accepts, and never panics on the rest.
func FuzzScanID(f *testing.F) {
	seed, _ := EncodeRequest(&Request{ID: "c1", Ident: "d1?READ:SETTINGS?TAG", Job: "j"})
	f.Add(seed)
	f.Add([]byte{0xa2, 0x61, 0x78, 0x81, 0x01, 0x62, 0x69, 0x64, 0x61, 0x41})
	f.Fuzz(func(t *testing.T, msg []byte) {
		id := scanID(msg)
		if req, err := DecodeRequest(msg); err == nil && req.ID != id {
			t.Fatalf("scanID = %q, the decoder read id %q", id, req.ID)
		}
	})
}

func TestKeysAreCaseSensitive(t *testing.T) {
	// {"v": 1, "ID": "upper", "id": "lower"}: "ID" is an unknown key.
	req, err := DecodeRequest(cborHex(t, "a3 61 76 01 62 49 44 65 75 70 70 65 72 62 69 64 65 6c 6f 77 65 72"))
	if err != nil {
		t.Fatal(err)
	}
	if req.ID != "lower" {
		t.Errorf("id = %q, want lower", req.ID)
	}
}

func TestNestedSettingsDecodeWithTextKeys(t *testing.T) {
	b, err := EncodeSettings(Settings{"schedule": map[string]any{"weekday": []any{map[string]any{"at": "06:30"}}}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := DecodeSettings(b)
	if err != nil {
		t.Fatal(err)
	}
	sched, ok := s["schedule"].(map[string]any)
	if !ok {
		t.Fatalf("nested map decoded as %T", s["schedule"])
	}
	if _, ok := sched["weekday"].([]any)[0].(map[string]any); !ok {
		t.Fatalf("map in a list decoded as %T", sched["weekday"].([]any)[0])
	}
	// A nested map with an integer key is not a settings document.
	bad, _ := encMode.Marshal(map[string]any{"x": map[int]any{1: "a"}})
	if _, err := DecodeSettings(bad); err == nil {
		t.Fatal("a map with an integer key was accepted")
	}
}
