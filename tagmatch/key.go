package tagmatch

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on a tag. A device that sends more is refused, not truncated.
const (
	MaxKeyLen   = 64    // bytes in a normalised key
	MaxValueLen = 1024  // bytes in a value
	MaxAttrs    = 64    // attributes in a tag
	MaxInputLen = 16384 // bytes of text given to ParseText, ParseKV or ParsePolicy
)

// keyAliases maps normalised spellings to the well-known key they stand for.
// "user info" is the article's name for the zone ("User info: South").
var keyAliases = map[string]string{
	"user_info": KeyZone,
}

// NormalizeKey returns the canonical spelling of a key: surrounding space trimmed,
// ASCII letters lower-cased, each run of spaces or tabs inside replaced by one "_",
// and aliases resolved ("User info" becomes "zone"). It does not validate; see ValidKey.
func NormalizeKey(k string) string {
	if isCanonicalKey(k) {
		return k
	}
	var b strings.Builder
	b.Grow(len(k))
	space := false
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == ' ' || c == '\t':
			space = true
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if space && b.Len() > 0 {
			b.WriteByte('_')
		}
		space = false
		b.WriteByte(c)
	}
	n := b.String()
	if a, ok := keyAliases[n]; ok {
		return a
	}
	return n
}

// isCanonicalKey reports whether k is already normalised, so NormalizeKey can
// return it without allocating (the common case on the match path).
func isCanonicalKey(k string) bool {
	if k == "" || !ValidKey(k) {
		return false
	}
	_, alias := keyAliases[k]
	return !alias
}

// ValidKey reports whether k is a valid normalised key: 1 to MaxKeyLen bytes of
// a-z, 0-9, "_", "-" and ".", starting with a letter or digit.
func ValidKey(k string) bool {
	if k == "" || len(k) > MaxKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case (c == '_' || c == '-' || c == '.') && i > 0:
		default:
			return false
		}
	}
	return true
}

// checkValue reports what is wrong with a value, or "" if nothing: it must be valid
// UTF-8, at most MaxValueLen bytes, free of control characters, and have no
// surrounding white space.
func checkValue(v string) string {
	if len(v) > MaxValueLen {
		return fmt.Sprintf("value longer than %d bytes", MaxValueLen)
	}
	if !utf8.ValidString(v) {
		return "value is not valid UTF-8"
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return fmt.Sprintf("value contains control character %U", r)
		}
	}
	if v != strings.TrimSpace(v) {
		return "value has surrounding white space"
	}
	return ""
}

// Validate checks that t is in canonical form: every key valid and normalised
// (ValidKey, no alias), no key twice, values valid (UTF-8, no control characters, no
// surrounding space, at most MaxValueLen bytes), at most MaxAttrs attributes.
// The error wraps ErrInvalidTag and names the attribute.
func (t Tag) Validate() error {
	if len(t) > MaxAttrs {
		return fmt.Errorf("tagmatch: tag has %d attributes, more than %d: %w", len(t), MaxAttrs, ErrInvalidTag)
	}
	for i, a := range t {
		if !isCanonicalKey(a.Key) {
			return fmt.Errorf("tagmatch: attribute %d: key %q is not a normalised key (a-z 0-9 _ - ., at most %d bytes; try NormalizeKey): %w", i+1, a.Key, MaxKeyLen, ErrInvalidTag)
		}
		if msg := checkValue(a.Value); msg != "" {
			return fmt.Errorf("tagmatch: attribute %d (%s): %s: %w", i+1, a.Key, msg, ErrInvalidTag)
		}
		for _, b := range t[:i] {
			if b.Key == a.Key {
				return fmt.Errorf("tagmatch: attribute %d: duplicate key %q: %w", i+1, a.Key, ErrInvalidTag)
			}
		}
	}
	return nil
}

// Normalize returns t in canonical form: keys through NormalizeKey, values with
// surrounding white space trimmed, order kept. It then validates the result, so a
// tag with a duplicate key (after normalisation, e.g. "Model" and "model") or a bad
// value is refused. When t is already canonical, Normalize returns t itself
// without allocating.
func (t Tag) Normalize() (Tag, error) {
	if t.isCanonical() {
		return t, nil
	}
	if len(t) > MaxAttrs {
		return nil, fmt.Errorf("tagmatch: tag has %d attributes, more than %d: %w", len(t), MaxAttrs, ErrInvalidTag)
	}
	out := make(Tag, len(t))
	for i, a := range t {
		out[i] = Attr{Key: NormalizeKey(a.Key), Value: strings.TrimSpace(a.Value)}
	}
	if err := out.Validate(); err != nil {
		return nil, err
	}
	return out, nil
}

func (t Tag) isCanonical() bool {
	return t.Validate() == nil
}

// Equal reports whether t and u have the same attributes in the same order.
func (t Tag) Equal(u Tag) bool {
	if len(t) != len(u) {
		return false
	}
	for i := range t {
		if t[i] != u[i] {
			return false
		}
	}
	return true
}

// index returns the position of key in t, or -1.
func (t Tag) index(key string) int {
	for i, a := range t {
		if a.Key == key {
			return i
		}
	}
	return -1
}
