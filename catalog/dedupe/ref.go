package dedupe

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// Ref names stored content: the SHA-256 of the whole content. It is a
// comparable value, usable as a map key.
type Ref [32]byte

// RefOf returns the Ref of data, the name Put gives it.
func RefOf(data []byte) Ref { return sha256.Sum256(data) }

// String returns the Ref in lower-case hex (64 characters).
func (r Ref) String() string { return hex.EncodeToString(r[:]) }

// IsZero reports whether r is the zero Ref, which names nothing.
func (r Ref) IsZero() bool { return r == Ref{} }

// ParseRef parses the 64 hex digits of a Ref (either case).
func ParseRef(s string) (Ref, error) {
	var r Ref
	if len(s) != 2*len(r) {
		return Ref{}, fmt.Errorf("dedupe: ref %q: want %d hex digits, have %d", s, 2*len(r), len(s))
	}
	if _, err := hex.Decode(r[:], []byte(s)); err != nil {
		return Ref{}, fmt.Errorf("dedupe: ref %q: %v", s, err)
	}
	return r, nil
}

// MarshalText encodes the Ref as hex, so it reads well in JSON and logs.
func (r Ref) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses a hex Ref.
func (r *Ref) UnmarshalText(b []byte) error {
	p, err := ParseRef(string(b))
	if err != nil {
		return err
	}
	*r = p
	return nil
}

// Sentinel errors, checked with errors.Is. Errors returned by the Store wrap
// them with the object (and chunk) concerned.
var (
	// ErrNotFound: no object with this Ref is stored.
	ErrNotFound = errors.New("not found")
	// ErrCorrupt: a stored value does not decode, or its content does not
	// hash to its name. Corrupt content is never returned as data.
	ErrCorrupt = errors.New("corrupt content")
)

// Problem is one inconsistency found by Check.
type Problem struct {
	// Object names what is wrong: "object <ref hex>", "chunk <hex>", or
	// "stats" for the store's counters.
	Object string
	Err    error
}

func (p Problem) String() string { return p.Object + ": " + p.Err.Error() }
