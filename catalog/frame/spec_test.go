package frame_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/fleetvault/fleetvault/catalog/frame"
	"github.com/fleetvault/fleetvault/catalog/internal/specblock"
	"github.com/fleetvault/fleetvault/catalog/repokey"
)

func TestSpecFrames(t *testing.T) {
	blocks, err := specblock.Read("../../docs/spec/catalog.md", "```frame-vector")
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) < 2 {
		t.Fatalf("found %d frame vectors in docs/spec/catalog.md, want at least 2", len(blocks))
	}
	other, err := repokey.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, bl := range blocks {
		v := bl.Fields
		t.Run(v["bucket"]+"/"+v["key"]+"/sealed="+boolString(v["repokey"] != ""), func(t *testing.T) {
			b, k, record := []byte(v["bucket"]), []byte(v["key"]), v["record"]
			want, err := hex.DecodeString(v["frame"])
			if err != nil {
				t.Fatalf("catalog.md:%d: frame: %v", bl.Line, err)
			}
			if err := frame.Verify(b, k, want); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if v["repokey"] == "" {
				if got := frame.New(nil).Encode(b, k, []byte(record)); !bytes.Equal(got, want) {
					t.Fatalf("Fleetvault writes %x", got)
				}
				if got, err := frame.New(nil).Decode(b, k, want); err != nil || string(got) != record {
					t.Fatalf("Decode = %q, %v", got, err)
				}
				return
			}
			raw, err := hex.DecodeString(v["repokey"])
			if err != nil {
				t.Fatalf("catalog.md:%d: repokey: %v", bl.Line, err)
			}
			key, err := repokey.FromBytes(raw)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := frame.New(key).Decode(b, k, want); err != nil || string(got) != record {
				t.Fatalf("Decode with its key = %q, %v", got, err)
			}
			if _, err := frame.New(other).Decode(b, k, want); !errors.Is(err, frame.ErrDamaged) {
				t.Fatalf("Decode with another key: %v", err)
			}
		})
	}
}

func boolString(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
