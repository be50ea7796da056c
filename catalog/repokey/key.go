package repokey

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// Size is the length of a repository key in bytes.
const Size = chacha20poly1305.KeySize

// Key is a repository key. It is safe for concurrent use.
type Key struct {
	aead cipher.AEAD
	raw  []byte // for wrapping in another key file
	id   string
}

// ErrOpen is wrapped when sealed data does not open: wrong key, or data
// altered.
var ErrOpen = errors.New("authentication failed")

// New returns a fresh random repository key.
func New() (*Key, error) {
	raw := make([]byte, Size)
	_, _ = rand.Read(raw) // crypto/rand.Read never fails (Go 1.24+)
	return FromBytes(raw)
}

// FromBytes makes a Key of raw, which must be Size bytes.
func FromBytes(raw []byte) (*Key, error) {
	a, err := chacha20poly1305.NewX(raw)
	if err != nil {
		return nil, fmt.Errorf("repokey: %w", err)
	}
	h := sha256.Sum256(append([]byte("fleetvault repository key id\x00"), raw...))
	return &Key{aead: a, raw: append([]byte(nil), raw...), id: hex.EncodeToString(h[:8])}, nil
}

// ID names the key without revealing it (a hash of it): two key files
// wrap the same repository key when they give the same ID.
func (k *Key) ID() string { return k.id }

// Overhead is how many bytes Seal adds.
func Overhead() int { return chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead }

// Seal appends a random nonce and the sealed plaintext to dst.
func (k *Key) Seal(dst, plaintext, ad []byte) []byte {
	return seal(k.aead, dst, plaintext, ad)
}

// Open appends to dst the plaintext of sealed (as Seal made it with ad).
func (k *Key) Open(dst, sealed, ad []byte) ([]byte, error) {
	return open(k.aead, dst, sealed, ad)
}

func seal(a cipher.AEAD, dst, plaintext, ad []byte) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, a.NonceSize())...)
	_, _ = rand.Read(dst[n:]) // crypto/rand.Read never fails (Go 1.24+)
	return a.Seal(dst, dst[n:], plaintext, ad)
}

func open(a cipher.AEAD, dst, sealed, ad []byte) ([]byte, error) {
	ns := a.NonceSize()
	if len(sealed) < ns+a.Overhead() {
		return nil, fmt.Errorf("%w: %d bytes is too short for sealed data", ErrOpen, len(sealed))
	}
	out, err := a.Open(dst, sealed[:ns], sealed[ns:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}
