package broker

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Params are the argon2id cost parameters of a password hash.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DeviceParams returns the parameters HashPassword uses. Device secrets are
// machine-generated 128-bit tokens (NewSecret), so guessing one is hopeless
// whatever the hash cost; the hash only has to keep a stolen credentials table
// from being replayed as-is. A cheap hash (about 80µs and 64 KiB per verify
// on the reference machine) lets 100,000 devices reconnect at once. See
// docs/broker.md for the measurements.
func DeviceParams() Params {
	return Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// Limits on the parameters VerifyPassword accepts, so that a corrupt or hostile
// credentials table cannot make one verify exhaust memory or CPU.
const (
	maxMemoryKiB = 256 << 10 // 256 MiB
	maxTime      = 16
	maxThreads   = 16
	minSaltLen   = 8
	maxSaltLen   = 64
	minKeyLen    = 16
	maxKeyLen    = 64
)

// ErrBadHash is returned, wrapped, for a password hash that is not a valid
// argon2id PHC string within the limits.
var ErrBadHash = errors.New("not an argon2id password hash")

// HashPassword hashes pw with argon2id and DeviceParams, returning a PHC
// string: $argon2id$v=19$m=64,t=1,p=1$<salt>$<hash> (unpadded standard base64).
func HashPassword(pw string) (string, error) {
	return HashPasswordParams(pw, DeviceParams())
}

// HashPasswordParams hashes pw with argon2id and the given parameters.
func HashPasswordParams(pw string, p Params) (string, error) {
	if err := p.check(); err != nil {
		return "", fmt.Errorf("broker: hash password: %w", err)
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("broker: hash password: read random salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether pw matches hash, an argon2id PHC string. The
// error is for a hash that cannot be parsed (wrapping ErrBadHash), never for a
// wrong password.
func VerifyPassword(hash, pw string) (bool, error) {
	p, salt, key, err := ParseHash(hash)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

var b64 = base64.RawStdEncoding

// ParseHash splits an argon2id PHC string into its parameters, salt and key,
// checking them against the limits.
func ParseHash(hash string) (p Params, salt, key []byte, err error) {
	fail := func(format string, a ...any) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, fmt.Errorf("%w: %s", ErrBadHash, fmt.Sprintf(format, a...))
	}
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" {
		return fail("want 5 fields $argon2id$v=..$m=..,t=..,p=..$salt$hash, got %d", len(parts)-1)
	}
	if parts[1] != "argon2id" {
		return fail("algorithm %q is not argon2id", truncate(parts[1]))
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return fail("version %q is not v=%d", truncate(parts[2]), argon2.Version)
	}
	var seen [3]bool
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		n, perr := strconv.ParseUint(v, 10, 32)
		if !ok || perr != nil {
			return fail("parameter %q is not name=number", truncate(kv))
		}
		switch k {
		case "m":
			p.Memory, seen[0] = uint32(n), !seen[0]
		case "t":
			p.Time, seen[1] = uint32(n), !seen[1]
		case "p":
			if n > 255 {
				return fail("p=%d exceeds %d", n, maxThreads)
			}
			p.Threads, seen[2] = uint8(n), !seen[2]
		default:
			return fail("unknown parameter %q", truncate(k))
		}
	}
	if !seen[0] || !seen[1] || !seen[2] || strings.Count(parts[3], ",") != 2 {
		return fail("parameters %q must be m, t and p, once each", truncate(parts[3]))
	}
	if salt, err = b64.DecodeString(parts[4]); err != nil {
		return fail("salt is not unpadded base64: %v", err)
	}
	if key, err = b64.DecodeString(parts[5]); err != nil {
		return fail("hash is not unpadded base64: %v", err)
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	if err := p.check(); err != nil {
		return fail("%v", err)
	}
	return p, salt, key, nil
}

// check keeps parameters within the limits VerifyPassword accepts.
func (p Params) check() error {
	switch {
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("t=%d is outside 1..%d", p.Time, maxTime)
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("p=%d is outside 1..%d", p.Threads, maxThreads)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemoryKiB:
		return fmt.Errorf("m=%d is outside %d..%d KiB", p.Memory, 8*uint32(p.Threads), maxMemoryKiB)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("salt of %d bytes is outside %d..%d", p.SaltLen, minSaltLen, maxSaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("hash of %d bytes is outside %d..%d", p.KeyLen, minKeyLen, maxKeyLen)
	}
	return nil
}

// NewSecret returns a fresh random device secret: 128 bits from crypto/rand,
// URL-safe base64 without padding (22 characters).
func NewSecret() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+); it crashes the program instead
	return base64.RawURLEncoding.EncodeToString(b)
}

// truncate keeps hostile input short in error messages.
func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

// ErrWeakPassword is returned, wrapped, by CheckPassword.
var ErrWeakPassword = errors.New("weak device password")

// Rules of CheckPassword.
const (
	MinPasswordLen      = 12   // characters
	MaxPasswordLen      = 1024 // bytes
	minPasswordDistinct = 6    // different characters
)

// CheckPassword refuses a device or server password too weak to set:
// shorter than MinPasswordLen characters, longer than MaxPasswordLen bytes,
// fewer than 6 different characters ("aaaaaaaaaaaa", "abababababab"),
// leading or trailing white space (a copy-paste slip), control characters, or
// invalid UTF-8. The error wraps ErrWeakPassword, says what is wrong and what
// to do, and never contains the password. NewSecret's secrets always pass.
//
// Why 12: the broker's lockout (LockoutThreshold) stops online guessing, so
// the length has to hold against a stolen credentials table, hashed with the
// cheap DeviceParams (about 80 µs a guess on one core): 12 lowercase letters
// alone are 26^12 ≈ 9.5×10^16 candidates, about 240,000 core-years.
func CheckPassword(pw string) error {
	weak := func(format string, a ...any) error {
		return fmt.Errorf("broker: %w: %s; a password needs at least %d characters, %d of them different (or let Fleetvault generate a secret)",
			ErrWeakPassword, fmt.Sprintf(format, a...), MinPasswordLen, minPasswordDistinct)
	}
	if !utf8.ValidString(pw) {
		return weak("it is not valid UTF-8")
	}
	n := utf8.RuneCountInString(pw)
	switch {
	case n == 0:
		return weak("it is empty")
	case n < MinPasswordLen:
		return weak("it has only %s", characters(n))
	case len(pw) > MaxPasswordLen:
		return fmt.Errorf("broker: %w: it has %d bytes, more than the %d allowed", ErrWeakPassword, len(pw), MaxPasswordLen)
	case strings.TrimSpace(pw) != pw:
		return weak("it starts or ends with white space (a copy-paste slip?)")
	}
	distinct := map[rune]bool{}
	for _, r := range pw {
		if unicode.IsControl(r) {
			return weak("it contains a control character")
		}
		distinct[r] = true
	}
	if len(distinct) < minPasswordDistinct {
		return weak("it uses only %s", characters(len(distinct)))
	}
	return nil
}

func characters(n int) string {
	if n == 1 {
		return "1 character"
	}
	return strconv.Itoa(n) + " characters"
}
