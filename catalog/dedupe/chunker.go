package dedupe

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/restic/chunker"
)

// Chunker names a content-defined chunking algorithm.
type Chunker string

// The chunkers the store knows. FastCDC is the default: see docs/spec/dedupe.md
// for the measurements behind the choice.
const (
	ChunkerFastCDC Chunker = "fastcdc" // gear hash with normalised chunking (Xia et al., 2016)
	ChunkerRabin   Chunker = "rabin"   // restic's Rabin-fingerprint chunker
)

// Chunk size bounds, shared by both chunkers so they compare fairly.
const (
	chunkMin     = 2 << 10
	chunkAvgBits = 13 // 8 KiB on average
	chunkMax     = 64 << 10
)

// splitter cuts content into chunks. The chunks alias data; concatenated
// they are data. Implementations are safe for concurrent use.
type splitter interface {
	split(data []byte) [][]byte
}

var (
	_ splitter = (*fastCDC)(nil)
	_ splitter = (*rabin)(nil)
)

func newSplitter(c Chunker) (splitter, error) {
	switch c {
	case ChunkerFastCDC, "":
		return newFastCDC(chunkMin, chunkAvgBits, chunkMax), nil
	case ChunkerRabin:
		return newRabin(chunkMin, chunkAvgBits, chunkMax), nil
	}
	return nil, fmt.Errorf("dedupe: unknown chunker %q (want %q or %q)", c, ChunkerFastCDC, ChunkerRabin)
}

// gearTable is FastCDC's table of 256 random 64-bit values. It is fixed by the
// standard (the first 8 bytes, big-endian, of SHA-256("fleetvault/fastcdc/gear"
// followed by the byte i)) so that every implementation cuts the same chunks.
var gearTable = makeGearTable()

func makeGearTable() (t [256]uint64) {
	for i := range t {
		h := sha256.Sum256(append([]byte("fleetvault/fastcdc/gear"), byte(i)))
		t[i] = binary.BigEndian.Uint64(h[:8])
	}
	return t
}

// fastCDC is FastCDC with normalisation level 2: a stricter mask before the
// average size, a looser one after, so chunk sizes cluster around the average.
// The masks test the high bits of the gear hash, which depend on the last 64
// bytes, not the low bits, which depend on only a few.
type fastCDC struct {
	min, avg, max int
	maskS, maskL  uint64
}

func newFastCDC(min, avgBits, max int) *fastCDC {
	return &fastCDC{
		min: min, avg: 1 << avgBits, max: max,
		maskS: ^uint64(0) << (64 - (avgBits + 2)),
		maskL: ^uint64(0) << (64 - (avgBits - 2)),
	}
}

// cut returns the length of the first chunk of data.
func (f *fastCDC) cut(data []byte) int {
	n := len(data)
	if n <= f.min {
		return n
	}
	if n > f.max {
		n = f.max
	}
	normal := min(f.avg, n)
	var fp uint64
	i := f.min
	for ; i < normal; i++ {
		fp = fp<<1 + gearTable[data[i]]
		if fp&f.maskS == 0 {
			return i + 1
		}
	}
	for ; i < n; i++ {
		fp = fp<<1 + gearTable[data[i]]
		if fp&f.maskL == 0 {
			return i + 1
		}
	}
	return n
}

func (f *fastCDC) split(data []byte) [][]byte {
	out := make([][]byte, 0, len(data)/f.avg+1)
	for len(data) > 0 {
		n := f.cut(data)
		out = append(out, data[:n:n])
		data = data[n:]
	}
	return out
}

// rabinPol is the fixed irreducible polynomial for the Rabin chunker (restic
// picks one per repository; a shared store needs one for everyone).
const rabinPol = chunker.Pol(0x3DA3358B4DC173)

// rabin adapts restic's chunker. Its Chunker holds a 512 KiB buffer, so they
// are pooled.
type rabin struct {
	min, max, bits int
	pool           sync.Pool
}

func newRabin(min, avgBits, max int) *rabin {
	r := &rabin{min: min, max: max, bits: avgBits}
	r.pool.New = func() any {
		c := chunker.NewWithBoundaries(bytes.NewReader(nil), rabinPol, uint(min), uint(max))
		c.SetAverageBits(avgBits)
		return c
	}
	return r
}

func (r *rabin) split(data []byte) [][]byte {
	c := r.pool.Get().(*chunker.Chunker)
	defer r.pool.Put(c)
	c.ResetWithBoundaries(bytes.NewReader(data), rabinPol, uint(r.min), uint(r.max))
	c.SetAverageBits(r.bits)
	out := make([][]byte, 0, len(data)>>r.bits+1)
	pos := 0
	for {
		ch, err := c.Next(nil)
		if err != nil {
			// A bytes.Reader ends with io.EOF only; whatever is left (nothing,
			// normally) becomes the last chunk, so no content is ever lost.
			if pos < len(data) {
				out = append(out, data[pos:len(data):len(data)])
			}
			return out
		}
		end := int(ch.Start + ch.Length)
		out = append(out, data[pos:end:end])
		pos = end
	}
}
