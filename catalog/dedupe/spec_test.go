package dedupe

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/fleetvault/fleetvault/catalog/internal/specblock"
	"github.com/fleetvault/fleetvault/catalog/repokey"
)

// specVector is one ```vector block of docs/spec/dedupe.md.
type specVec struct {
	bucket                       string
	content, key, value, repokey []byte
}

func readSpecVectors(t *testing.T) []specVec {
	t.Helper()
	out := readSpecBlocks(t, "```vector")
	if len(out) < 5 {
		t.Fatalf("found %d vectors in the spec, want at least 5", len(out))
	}
	return out
}

// readSpecBlocks reads the blocks of docs/spec/dedupe.md opened by fence.
func readSpecBlocks(t *testing.T, fence string) []specVec {
	t.Helper()
	blocks, err := specblock.Read("../../docs/spec/dedupe.md", fence)
	if err != nil {
		t.Fatal(err)
	}
	var out []specVec
	for _, b := range blocks {
		v := specVec{bucket: b.Fields["bucket"]}
		for name, dst := range map[string]*[]byte{"content": &v.content, "key": &v.key, "value": &v.value, "repokey": &v.repokey} {
			if *dst, err = hex.DecodeString(b.Fields[name]); err != nil {
				t.Fatalf("dedupe.md:%d: %s: %v", b.Line, name, err)
			}
		}
		for name := range b.Fields {
			if !strings.Contains(" bucket content key value repokey ", " "+name+" ") {
				t.Fatalf("dedupe.md:%d: unknown field %q", b.Line, name)
			}
		}
		out = append(out, v)
	}
	return out
}

func TestSealedSpecVectors(t *testing.T) {
	vecs := readSpecBlocks(t, "```sealed-vector")
	if len(vecs) == 0 {
		t.Fatal("no sealed-vector blocks in docs/spec/dedupe.md")
	}
	other, err := repokey.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vecs {
		key, err := repokey.FromBytes(v.repokey)
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name   string
			cipher Cipher
			ok     bool
		}{{"its key", key, true}, {"another key", other, false}, {"no key", nil, false}}
		for _, tt := range tests {
			t.Run(hex.EncodeToString(v.key[:4])+"/"+tt.name, func(t *testing.T) {
				db, s := mustOpen(t, Options{Cipher: tt.cipher})
				err := db.Update(func(tx *bbolt.Tx) error {
					if err := tx.Bucket([]byte(v.bucket)).Put(v.key, v.value); err != nil {
						return err
					}
					return tx.Bucket(bucketObjRefs).Put(v.key, encodeCount(1))
				})
				if err != nil {
					t.Fatal(err)
				}
				got, err := get(db, s, Ref(v.key))
				if tt.ok != (err == nil) || (tt.ok && !bytes.Equal(got, v.content)) {
					t.Fatalf("read %q, %v; want the content: %v", got, err, tt.ok)
				}
				if tt.cipher == nil && !errors.Is(err, ErrSealed) {
					t.Fatalf("read without a key: %v, want ErrSealed", err)
				}
			})
		}
	}
}

func TestSpecVectors(t *testing.T) {
	vecs := readSpecVectors(t)
	db, s := mustOpen(t, Options{})
	// Write the vectors' records into a store by hand, as another
	// implementation would, with the counts the spec prescribes.
	err := db.Update(func(tx *bbolt.Tx) error {
		for _, v := range vecs {
			if v.bucket == string(bucketMeta) {
				continue
			}
			if err := tx.Bucket([]byte(v.bucket)).Put(v.key, v.value); err != nil {
				return err
			}
			counts := bucketObjRefs
			if v.bucket == string(bucketChunks) {
				counts = bucketChunkRefs
			}
			if err := tx.Bucket(counts).Put(v.key, encodeCount(1)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vecs {
		t.Run(v.bucket+"/"+hex.EncodeToString(v.key[:4]), func(t *testing.T) {
			switch v.bucket {
			case string(bucketObjects):
				if RefOf(v.content) != Ref(v.key) {
					t.Fatal("key is not the SHA-256 of the content")
				}
				got, err := get(db, s, Ref(v.key))
				if err != nil || !bytes.Equal(got, v.content) {
					t.Fatalf("read %x, %v; want the content", got, err)
				}
				if o, _ := decodeObject(v.value); o.kind == kindInline && o.inline.flag == flagRaw {
					if w := encodeInline(s.compress(v.content, nil)); !bytes.Equal(w, v.value) {
						t.Fatalf("Fleetvault writes %x", w)
					}
				}
			case string(bucketChunks):
				p, err := decodeChunk(v.value)
				if err != nil {
					t.Fatal(err)
				}
				got, err := s.decompress(nil, p, nil)
				if err != nil || !bytes.Equal(got, v.content) || RefOf(got) != Ref(v.key) {
					t.Fatalf("chunk reads %x, %v", got, err)
				}
				if w := encodeChunk(s.compress(v.content, nil)); p.flag == flagRaw && !bytes.Equal(w, v.value) {
					t.Fatalf("Fleetvault writes %x", w)
				}
			case string(bucketMeta):
				st, err := decodeStats(v.value)
				want := Stats{Objects: 1, RawBytes: 5, StoredBytes: 9, References: 2, LogicalBytes: 10}
				if err != nil || st != want || !bytes.Equal(v.key, keyStats) {
					t.Fatalf("stats %+v, %v; want %+v", st, err, want)
				}
			default:
				t.Fatalf("unknown bucket %q", v.bucket)
			}
		})
	}
}

func TestSpecRejects(t *testing.T) {
	tests := []struct{ name, value string }{
		{"unknown version", "0201000568656c6c6f"},
		{"unknown kind", "0103000568656c6c6f"},
		{"unknown flag", "0101020568656c6c6f"},
		{"raw length mismatch", "0101000668656c6c6f"},
		{"non-minimal uvarint", "010100850068656c6c6f"},
		{"manifest sum mismatch", "01021902d27c1948202d2d3b567f27093f4ac34ca6793acc068a1e64ffdd09e6c675a0a10c729ee7b9f8a4e5a56dfbd89522bb0e55212da57801576abc2927f55da1e5e2840c"},
		{"manifest trailing byte", "01021802d27c1948202d2d3b567f27093f4ac34ca6793acc068a1e64ffdd09e6c675a0a10c729ee7b9f8a4e5a56dfbd89522bb0e55212da57801576abc2927f55da1e5e2840c00"},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := hex.DecodeString(tt.value)
			if _, err := decodeObject(b); err == nil {
				t.Fatalf("%s decoded", tt.value)
			}
		})
	}
}
