package frame_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/fleetvault/fleetvault/catalog/frame"
	"github.com/fleetvault/fleetvault/catalog/repokey"
)

// frameVector is one ```frame-vector block of docs/spec/catalog.md.
type frameVector struct {
	bucket, key, record string
	repokey, frame      []byte
}

func readFrameVectors(t *testing.T) []frameVector {
	t.Helper()
	f, err := os.Open("../../docs/spec/catalog.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []frameVector
	var cur *frameVector
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		switch {
		case text == "```frame-vector":
			cur = &frameVector{}
		case text == "```" && cur != nil:
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			name, val, ok := strings.Cut(text, ": ")
			if !ok {
				t.Fatalf("catalog.md:%d: %q is not name: value", line, text)
			}
			var err error
			switch name {
			case "bucket":
				cur.bucket = val
			case "key":
				cur.key = val
			case "record":
				cur.record = val
			case "repokey":
				cur.repokey, err = hex.DecodeString(val)
			case "frame":
				cur.frame, err = hex.DecodeString(val)
			default:
				t.Fatalf("catalog.md:%d: unknown field %q", line, name)
			}
			if err != nil {
				t.Fatalf("catalog.md:%d: %v", line, err)
			}
		}
	}
	if len(out) < 2 {
		t.Fatalf("found %d frame vectors in docs/spec/catalog.md, want at least 2", len(out))
	}
	return out
}

func TestSpecFrames(t *testing.T) {
	other, err := repokey.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range readFrameVectors(t) {
		t.Run(v.bucket+"/"+v.key+"/sealed="+hex.EncodeToString(v.repokey[:min(2, len(v.repokey))]), func(t *testing.T) {
			b, k := []byte(v.bucket), []byte(v.key)
			if err := frame.Verify(b, k, v.frame); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if v.repokey == nil {
				if got := frame.New(nil).Encode(b, k, []byte(v.record)); !bytes.Equal(got, v.frame) {
					t.Fatalf("Fleetvault writes %x", got)
				}
				got, err := frame.New(nil).Decode(b, k, v.frame)
				if err != nil || string(got) != v.record {
					t.Fatalf("Decode = %q, %v", got, err)
				}
				return
			}
			key, err := repokey.FromBytes(v.repokey)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := frame.New(key).Decode(b, k, v.frame); err != nil || string(got) != v.record {
				t.Fatalf("Decode with its key = %q, %v", got, err)
			}
			if _, err := frame.New(other).Decode(b, k, v.frame); !errors.Is(err, frame.ErrDamaged) {
				t.Fatalf("Decode with another key: %v", err)
			}
		})
	}
}
