package dedupe

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"go.etcd.io/bbolt"
)

func TestSplitBounds(t *testing.T) {
	inputs := map[string][]byte{
		"empty":    {},
		"tiny":     []byte("x"),
		"min":      randomBytes(1, chunkMin),
		"zeros":    make([]byte, 300<<10), // no content cuts: all max-size chunks
		"random":   randomBytes(2, 1<<20),
		"settings": largeSettings(t, 3, 3000),
	}
	for _, c := range []Chunker{ChunkerFastCDC, ChunkerRabin} {
		sp, err := newSplitter(c)
		if err != nil {
			t.Fatal(err)
		}
		for name, data := range inputs {
			t.Run(string(c)+"/"+name, func(t *testing.T) {
				chunks := sp.split(data)
				if got := bytes.Join(chunks, nil); !bytes.Equal(got, data) {
					t.Fatalf("chunks join to %d bytes, want the %d split", len(got), len(data))
				}
				for i, ch := range chunks {
					last := i == len(chunks)-1
					if len(ch) > chunkMax || len(ch) == 0 || (!last && len(ch) < chunkMin) {
						t.Fatalf("chunk %d of %d has %d bytes, outside %d-%d", i, len(chunks), len(ch), chunkMin, chunkMax)
					}
				}
			})
		}
	}
}

// TestFastCDCVector pins the FastCDC cut points of the spec's test vector, so
// any change to the gear table or masks (which would break dedupe against
// existing stores) fails here. docs/spec/dedupe.md lists the same values.
func TestFastCDCVector(t *testing.T) {
	data := specVector()
	var lens []string
	for _, c := range newFastCDC(chunkMin, chunkAvgBits, chunkMax).split(data) {
		lens = append(lens, fmt.Sprint(len(c)))
	}
	got := strings.Join(lens, " ")
	want := fastCDCVectorLengths
	if got != want {
		t.Fatalf("FastCDC cuts of the spec vector: %s\nwant %s", got, want)
	}
	if g := gearTable[0]; g != gearTable0 {
		t.Fatalf("gear[0] = %#x, want %#x", g, gearTable0)
	}
}

// specVector is the spec's chunking test input: 256 KiB made of the SHA-256
// digests of "fleetvault/fastcdc/vector" followed by a 4-byte big-endian
// counter from 0, concatenated.
func specVector() []byte {
	b := make([]byte, 0, 256<<10)
	for i := uint32(0); len(b) < 256<<10; i++ {
		h := sha256.Sum256(binary.BigEndian.AppendUint32([]byte("fleetvault/fastcdc/vector"), i))
		b = append(b, h[:]...)
	}
	return b
}

// edit is a realistic change to a large document.
type edit struct {
	name  string
	apply func(t testing.TB) (base, edited []byte)
}

// configBlob is a firmware configuration file: key=value lines in sections.
func configBlob(seed uint64, lines int, insertAt int) []byte {
	r := rand.New(rand.NewPCG(seed, 3))
	var b bytes.Buffer
	for i := range lines {
		if i == insertAt {
			b.WriteString("[added]\nfeature.new_flag = true\n")
		}
		if i%25 == 0 {
			fmt.Fprintf(&b, "[section.%d]\n", i/25)
		}
		fmt.Fprintf(&b, "param_%04d.%s = %d\n", i, []string{"gain", "offset", "limit", "mode", "timer"}[r.IntN(5)], r.IntN(100000))
	}
	return b.Bytes()
}

func chunkEdits() []edit {
	return []edit{
		{"settings: zone inserted mid-list", func(t testing.TB) ([]byte, []byte) {
			return largeSettings(t, 40, 4000), insertZone(t, 40, 4000)
		}},
		{"settings: one setpoint changed", func(t testing.TB) ([]byte, []byte) {
			base := largeSettings(t, 41, 4000)
			edited := bytes.Clone(base)
			i := bytes.Index(edited[len(edited)/2:], []byte("setpoint")) + len(edited)/2
			edited[i+len("setpoint")+3] ^= 0x01 // a float16/32 byte of the value
			return base, edited
		}},
		{"config: line inserted mid-file", func(testing.TB) ([]byte, []byte) {
			return configBlob(42, 12000, -1), configBlob(42, 12000, 6000)
		}},
		{"config: line prepended", func(testing.TB) ([]byte, []byte) {
			return configBlob(43, 12000, -1), configBlob(43, 12000, 0)
		}},
	}
}

// insertZone is largeSettings(seed, zones) with one more zone in the middle,
// re-encoded: the array header changes too, as a real edit would.
func insertZone(t testing.TB, seed uint64, zones int) []byte {
	base := largeSettings(t, seed, zones)
	var doc map[string]any
	if err := decodeForTest(base, &doc); err != nil {
		t.Fatal(err)
	}
	list := doc["zones"].([]any)
	mid := len(list) / 2
	list = append(list[:mid:mid], append([]any{map[string]any{"name": "new room", "setpoint": 21.0, "mode": "auto", "schedule": []any{uint64(7), uint64(19)}, "enabled": true}}, list[mid:]...)...)
	doc["zones"] = list
	return encodeSettings(t, doc)
}

// reuse returns the share of edited's bytes in chunks that base already had,
// and the number of chunks of each.
func reuse(sp splitter, base, edited []byte) (share float64, baseChunks, newChunks int) {
	have := map[[32]byte]bool{}
	for _, c := range sp.split(base) {
		have[sha256.Sum256(c)] = true
	}
	var reused int
	chunks := sp.split(edited)
	for _, c := range chunks {
		if have[sha256.Sum256(c)] {
			reused += len(c)
		} else {
			newChunks++
		}
	}
	return float64(reused) / float64(len(edited)), len(have), newChunks
}

func TestChunkReuseOnRealisticEdits(t *testing.T) {
	for _, e := range chunkEdits() {
		base, edited := e.apply(t)
		for _, c := range []Chunker{ChunkerFastCDC, ChunkerRabin} {
			t.Run(e.name+"/"+string(c), func(t *testing.T) {
				sp, _ := newSplitter(c)
				share, n, added := reuse(sp, base, edited)
				t.Logf("%d KiB, %d chunks, %d new after the edit, %.1f%% of bytes reused", len(edited)>>10, n, added, 100*share)
				if share < 0.85 {
					t.Fatalf("only %.1f%% of the edited document's bytes reused", 100*share)
				}
			})
		}
	}
}

// BenchmarkSplit measures chunking speed (MB/s) and, as custom metrics, the
// share of bytes reused after each realistic edit.
func BenchmarkSplit(b *testing.B) {
	for _, c := range []Chunker{ChunkerFastCDC, ChunkerRabin} {
		sp, _ := newSplitter(c)
		for _, e := range chunkEdits() {
			base, edited := e.apply(b)
			b.Run(string(c)+"/"+strings.ReplaceAll(e.name, " ", "_"), func(b *testing.B) {
				share, _, added := reuse(sp, base, edited)
				b.SetBytes(int64(len(edited)))
				for b.Loop() {
					sp.split(edited)
				}
				b.ReportMetric(100*share, "%reused")
				b.ReportMetric(float64(added), "new-chunks")
			})
		}
	}
}

// BenchmarkPut measures storing 2 KiB settings documents in batches of 1000
// per transaction: new content (hash, compress, write) and repeated content
// (hash and count only).
func BenchmarkPut(b *testing.B) {
	for _, repeated := range []bool{true, false} {
		name := map[bool]string{true: "repeated", false: "new"}[repeated]
		b.Run(name, func(b *testing.B) {
			db, s := mustOpen(b, Options{})
			doc := largeSettings(b, 1, 20)
			const batch = 1000
			n := 0
			b.SetBytes(batch * int64(len(doc)))
			for b.Loop() {
				err := db.Update(func(tx *bbolt.Tx) error {
					for range batch {
						if !repeated {
							n++
							binary.BigEndian.PutUint64(doc[len(doc)-8:], uint64(n))
						}
						if _, _, err := s.Put(tx, doc); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "puts/s")
		})
	}
}

// BenchmarkGet measures reading and hash-checking a 2 KiB object and a
// 400 KiB chunked one.
func BenchmarkGet(b *testing.B) {
	for _, zones := range []int{20, 4000} {
		doc := largeSettings(b, 2, zones)
		b.Run(fmt.Sprintf("%dKiB", len(doc)>>10), func(b *testing.B) {
			db, s := mustOpen(b, Options{})
			ref, _ := put(b, db, s, doc)
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				if _, err := get(db, s, ref); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Pinned by TestFastCDCVector; printed by it when they change.
const (
	fastCDCVectorLengths = "2883 8498 8508 8801 8933 8573 11724 9678 9715 19663 10413 8379 8315 9687 11650 10249 2573 10275 9457 9489 10009 11329 4385 11875 8993 20163 6221 1706"
	gearTable0           = 0x2b7ddc60998ae22a
)
