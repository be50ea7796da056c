package repokey

import (
	"bufio"
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// An encrypted file (an encrypted export; docs/spec/catalog.md, "Encrypted
// exports") is a magic line, a JSON line with the argon2id parameters and
// salt, then segments: a 4-byte big-endian length and a nonce-and-sealed
// chunk of at most segmentSize plaintext bytes, sealed with the passphrase's
// key and, as associated data, the segment's index and whether it is the
// last, so reordered, dropped or truncated segments do not open.
const (
	streamMagic = "fleetvault-encrypted v1\n"
	segmentSize = 64 << 10
)

// ErrNotEncrypted: the stream does not start with the encrypted file's magic line.
var ErrNotEncrypted = errors.New("not a fleetvault encrypted file")

type streamHeader struct {
	KDF    string `json:"kdf"`
	Params Params `json:"params"`
	Salt   []byte `json:"salt"`
}

// IsEncrypted reports whether head, the first bytes of a file, start an
// encrypted file.
func IsEncrypted(head []byte) bool {
	return bytes.HasPrefix(head, []byte(streamMagic))
}

// StreamWriter encrypts what is written to it; Close writes the last
// segment and must be called.
type StreamWriter struct {
	w    io.Writer
	aead cipher.AEAD
	buf  []byte
	n    uint64
	err  error
}

// NewWriter starts an encrypted file on w, sealed under pass.
func NewWriter(w io.Writer, pass []byte, p Params) (*StreamWriter, error) {
	if len(pass) == 0 {
		return nil, errors.New("repokey: an empty passphrase is not allowed")
	}
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("repokey: %w", err)
	}
	h := streamHeader{KDF: "argon2id", Params: p, Salt: make([]byte, saltLen)}
	_, _ = rand.Read(h.Salt)
	line, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	a, err := chacha20poly1305.NewX(argon2.IDKey(pass, h.Salt, p.Time, p.MemoryKiB, p.Threads, Size))
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(w, streamMagic+string(line)+"\n"); err != nil {
		return nil, err
	}
	return &StreamWriter{w: w, aead: a, buf: make([]byte, 0, segmentSize)}, nil
}

func segmentAD(i uint64, last bool) []byte {
	ad := binary.BigEndian.AppendUint64([]byte("fleetvault segment"), i)
	if last {
		return append(ad, 1)
	}
	return append(ad, 0)
}

func (s *StreamWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 && s.err == nil {
		k := min(len(p), segmentSize-len(s.buf))
		s.buf = append(s.buf, p[:k]...)
		p, n = p[k:], n+k
		if len(s.buf) == segmentSize && len(p) > 0 {
			s.flush(false)
		}
	}
	return n, s.err
}

func (s *StreamWriter) flush(last bool) {
	if s.err != nil {
		return
	}
	sealed := seal(s.aead, nil, s.buf, segmentAD(s.n, last))
	var l [4]byte
	binary.BigEndian.PutUint32(l[:], uint32(len(sealed)))
	if _, s.err = s.w.Write(l[:]); s.err == nil {
		_, s.err = s.w.Write(sealed)
	}
	s.n++
	s.buf = s.buf[:0]
}

// Close writes the last segment. It does not close the underlying writer.
func (s *StreamWriter) Close() error {
	s.flush(true)
	return s.err
}

// NewReader opens an encrypted file from r with pass; reads fail (with an
// error naming the segment) on any alteration or truncation.
func NewReader(r io.Reader, pass []byte) (io.Reader, error) {
	br := bufio.NewReader(r)
	magic := make([]byte, len(streamMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != streamMagic {
		return nil, ErrNotEncrypted
	}
	line, err := br.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("repokey: encrypted file header: %w", err)
	}
	var h streamHeader
	if err := json.Unmarshal(line, &h); err != nil || h.KDF != "argon2id" || len(h.Salt) < 8 {
		return nil, fmt.Errorf("repokey: encrypted file header does not decode")
	}
	if err := h.Params.validate(); err != nil {
		return nil, fmt.Errorf("repokey: encrypted file header: %w", err)
	}
	a, err := chacha20poly1305.NewX(argon2.IDKey(pass, h.Salt, h.Params.Time, h.Params.MemoryKiB, h.Params.Threads, Size))
	if err != nil {
		return nil, err
	}
	sr := &streamReader{r: br, aead: a}
	if err := sr.next(); err != nil { // a wrong passphrase fails here, before any data
		if errors.Is(err, ErrOpen) && sr.n == 0 {
			return nil, fmt.Errorf("repokey: %w", ErrWrongPassphrase)
		}
		return nil, err
	}
	return sr, nil
}

type streamReader struct {
	r    *bufio.Reader
	aead cipher.AEAD
	buf  []byte
	n    uint64
	done bool
}

// next reads and opens one segment.
func (s *streamReader) next() error {
	var l [4]byte
	if _, err := io.ReadFull(s.r, l[:]); err != nil {
		return fmt.Errorf("repokey: encrypted file truncated before segment %d: %w", s.n, io.ErrUnexpectedEOF)
	}
	size := binary.BigEndian.Uint32(l[:])
	if size > segmentSize+uint32(Overhead()) {
		return fmt.Errorf("repokey: encrypted file segment %d: length %d over the limit", s.n, size)
	}
	sealed := make([]byte, size)
	if _, err := io.ReadFull(s.r, sealed); err != nil {
		return fmt.Errorf("repokey: encrypted file truncated in segment %d: %w", s.n, io.ErrUnexpectedEOF)
	}
	for _, last := range []bool{false, true} {
		if plain, err := open(s.aead, nil, sealed, segmentAD(s.n, last)); err == nil {
			s.buf, s.done = plain, last
			s.n++
			if last {
				if _, err := s.r.ReadByte(); err != io.EOF {
					return fmt.Errorf("repokey: encrypted file: data after the last segment")
				}
			}
			return nil
		}
	}
	return fmt.Errorf("repokey: encrypted file segment %d: %w (wrong passphrase, or the file was altered)", s.n, ErrOpen)
}

func (s *streamReader) Read(p []byte) (int, error) {
	for len(s.buf) == 0 {
		if s.done {
			return 0, io.EOF
		}
		if err := s.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}
