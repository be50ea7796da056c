package frame_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/fleetvault/fleetvault/catalog/frame"
	"github.com/fleetvault/fleetvault/catalog/repokey"
)

func TestFrames(t *testing.T) {
	key, err := repokey.New()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := repokey.New()
	clear, sealed := frame.New(nil), frame.New(key)
	body := []byte(`{"id":"dev-1","password_hash":"secret"}`)
	bkt, k := []byte("devices"), []byte("dev-1")
	flip := func(v []byte, i int) []byte { v = bytes.Clone(v); v[i] ^= 1; return v }
	tests := []struct {
		name    string
		write   frame.Codec
		read    frame.Codec
		alter   func(v []byte) []byte
		bkt, k  []byte
		wantErr error
	}{
		{"clear round trip", clear, clear, nil, bkt, k, nil},
		{"sealed round trip", sealed, sealed, nil, bkt, k, nil},
		{"clear, flipped body byte", clear, clear, func(v []byte) []byte { return flip(v, 5) }, bkt, k, frame.ErrDamaged},
		{"sealed, flipped body byte", sealed, sealed, func(v []byte) []byte { return flip(v, 5) }, bkt, k, frame.ErrDamaged},
		{"flipped checksum", clear, clear, func(v []byte) []byte { return flip(v, len(v)-1) }, bkt, k, frame.ErrDamaged},
		{"moved to another key", clear, clear, nil, bkt, []byte("dev-2"), frame.ErrDamaged},
		{"moved to another bucket", sealed, sealed, nil, []byte("groups"), k, frame.ErrDamaged},
		{"sealed, read with no key", sealed, clear, nil, bkt, k, frame.ErrSealed},
		{"sealed, read with another key", sealed, frame.New(other), nil, bkt, k, frame.ErrDamaged},
		{"clear in an encrypted store", clear, sealed, nil, bkt, k, frame.ErrNotSealed},
		{"short", clear, clear, func([]byte) []byte { return []byte{frame.Marker, 0} }, bkt, k, frame.ErrDamaged},
		{"unknown kind", clear, clear, func(v []byte) []byte { v = bytes.Clone(v); v[1] = 7; return v }, bkt, k, frame.ErrDamaged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.write.Encode(bkt, k, body)
			if tt.write.Sealed() && bytes.Contains(v, []byte("secret")) {
				t.Fatal("a sealed frame holds the record in clear")
			}
			if tt.alter != nil {
				v = tt.alter(v)
			}
			got, err := tt.read.Decode(tt.bkt, tt.k, v)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Decode = %v, want %v", err, tt.wantErr)
			}
			if err == nil && !bytes.Equal(got, body) {
				t.Fatalf("Decode = %q, want %q", got, body)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(frame.New(nil).Encode([]byte("b"), []byte("k"), []byte("{}")))
	f.Add([]byte{frame.Marker})
	f.Fuzz(func(t *testing.T, v []byte) {
		_, _ = frame.New(nil).Decode([]byte("b"), []byte("k"), v) // no panic
		if frame.Verify([]byte("b"), []byte("k"), v) == nil && frame.Legacy(v) {
			t.Fatal("a verified frame is legacy")
		}
	})
}
