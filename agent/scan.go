package agent

import (
	"encoding/binary"
	"unicode/utf8"
)

// scanID finds the correlation id ("id": text) among the top-level pairs of a
// CBOR map without decoding the rest, so that a request which is oversized or
// malformed further on can still be answered with an error. It reads at most
// MaxMapPairs pairs, no deeper than MaxNesting, and gives "" when there is no
// usable id. It never reads past msg.
func scanID(msg []byte) string {
	s := scanner{b: msg}
	major, n, ok := s.head()
	if !ok || major != 5 || n > MaxMapPairs {
		return ""
	}
	for range n {
		kMajor, kLen, ok := s.head()
		if !ok {
			return ""
		}
		isID := false
		if kMajor == 3 {
			k, ok := s.bytes(kLen)
			if !ok {
				return ""
			}
			isID = string(k) == "id"
		} else if !s.skipBody(kMajor, kLen, 1) {
			return ""
		}
		vMajor, vLen, ok := s.head()
		if !ok {
			return ""
		}
		if isID {
			v, ok := s.bytes(vLen)
			if vMajor != 3 || !ok || !utf8.Valid(v) {
				return ""
			}
			return string(v)
		}
		if !s.skipBody(vMajor, vLen, 1) {
			return ""
		}
	}
	return ""
}

type scanner struct {
	b   []byte
	off int
}

// head reads an item's initial byte and argument. Indefinite lengths (which
// the protocol forbids) and reserved values fail.
func (s *scanner) head() (major byte, arg uint64, ok bool) {
	if s.off >= len(s.b) {
		return 0, 0, false
	}
	ib := s.b[s.off]
	s.off++
	major, info := ib>>5, ib&0x1f
	var size int
	switch {
	case info < 24:
		return major, uint64(info), true
	case info == 24:
		size = 1
	case info == 25:
		size = 2
	case info == 26:
		size = 4
	case info == 27:
		size = 8
	default:
		return 0, 0, false
	}
	if len(s.b)-s.off < size {
		return 0, 0, false
	}
	var buf [8]byte
	copy(buf[8-size:], s.b[s.off:s.off+size])
	s.off += size
	return major, binary.BigEndian.Uint64(buf[:]), true
}

// bytes returns the next n bytes.
func (s *scanner) bytes(n uint64) ([]byte, bool) {
	if n > uint64(len(s.b)-s.off) {
		return nil, false
	}
	b := s.b[s.off : s.off+int(n)]
	s.off += int(n)
	return b, true
}

// skipBody skips what follows an item's head.
func (s *scanner) skipBody(major byte, arg uint64, depth int) bool {
	if depth > MaxNesting {
		return false
	}
	switch major {
	case 0, 1, 7: // integers, simple values and floats: the head is all
		return true
	case 2, 3:
		_, ok := s.bytes(arg)
		return ok
	case 4, 5:
		items := arg
		if major == 5 {
			if arg > MaxMapPairs {
				return false
			}
			items *= 2
		} else if arg > MaxArrayElements {
			return false
		}
		for range items {
			if !s.skipItem(depth + 1) {
				return false
			}
		}
		return true
	case 6: // a tag: skip the tagged item
		return s.skipItem(depth + 1)
	}
	return false
}

func (s *scanner) skipItem(depth int) bool {
	major, arg, ok := s.head()
	return ok && s.skipBody(major, arg, depth)
}
