package tagmatch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// ParseKV parses the structured text form used by CLI flags and config files:
//
//	manufacturer=Acme Corp.; model=xyz; zone=South
//
// Pairs are separated by ";" (one trailing ";" allowed); keys go through
// NormalizeKey ("User info=South" gives zone); a value runs to the next ";" and
// is trimmed, or is one double-quoted string (escapes \" and \\) when it holds
// ";" or quotes. The empty string is the empty tag. Errors are *SyntaxError
// values naming the column.
func ParseKV(s string) (Tag, error) {
	if len(s) > MaxInputLen {
		return nil, syntaxErr("kv", s, MaxInputLen, "input longer than %d bytes", MaxInputLen)
	}
	if !utf8.ValidString(s) {
		return nil, syntaxErr("kv", s, invalidUTF8At(s), "invalid UTF-8")
	}
	var t Tag
	for i := 0; i < len(s); {
		start := skipSpace(s, i)
		if start == len(s) {
			break
		}
		eq := strings.IndexAny(s[start:], "=;\"")
		if eq < 0 || s[start+eq] != '=' {
			return nil, syntaxErr("kv", s, start, "expected key=value")
		}
		eq += start
		rawKey := strings.TrimSpace(s[start:eq])
		key := NormalizeKey(rawKey)
		if !ValidKey(key) {
			return nil, syntaxErr("kv", s, start, "invalid key %q (keys are letters, digits, _ - ., at most %d bytes)", rawKey, MaxKeyLen)
		}
		value, next, err := kvValue(s, eq+1)
		if err != nil {
			return nil, err
		}
		if t, err = addAttr(s, "kv", start, t, key, value); err != nil {
			return nil, err
		}
		i = next
	}
	return t, nil
}

// kvValue reads the value starting at s[i] and returns it and the offset after
// its terminating ";" (or the end).
func kvValue(s string, i int) (string, int, error) {
	i = skipSpace(s, i)
	var v string
	if i < len(s) && s[i] == '"' {
		content, end, err := readQuoted("kv", s, i)
		if err != nil {
			return "", 0, err
		}
		v = strings.TrimSpace(content)
		i = skipSpace(s, end)
		if i < len(s) && s[i] != ';' {
			return "", 0, syntaxErr("kv", s, i, "expected ; after quoted value")
		}
	} else {
		end := strings.IndexAny(s[i:], ";\"")
		if end < 0 {
			end = len(s) - i
		}
		if i+end < len(s) && s[i+end] == '"' {
			return "", 0, syntaxErr("kv", s, i+end, "a quote may only start a value")
		}
		v = strings.TrimSpace(s[i : i+end])
		i += end
	}
	if i < len(s) {
		i++ // the ";"
	}
	return v, i, nil
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// String prints t in the structured form ParseKV reads back to t (for a tag that
// passes Validate): "manufacturer=Acme Corp.; model=xyz; zone=South".
func (t Tag) String() string {
	return t.kv("; ")
}

func (t Tag) kv(sep string) string {
	var b strings.Builder
	for i, a := range t {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(a.Key)
		b.WriteByte('=')
		if a.Value == "" || strings.ContainsAny(a.Value, `;"\`) || strings.TrimSpace(a.Value) != a.Value {
			b.WriteString(quote(a.Value))
		} else {
			b.WriteString(a.Value)
		}
	}
	return b.String()
}

// Canonical returns a stable string for t, for indexing and comparing tags
// regardless of order: keys normalised, values trimmed, attributes sorted by key
// (stably), printed in the structured form with ";" between pairs. Two tags with the
// same attributes in any order have the same Canonical string.
func (t Tag) Canonical() string {
	c := make(Tag, len(t))
	for i, a := range t {
		c[i] = Attr{Key: NormalizeKey(a.Key), Value: strings.TrimSpace(a.Value)}
	}
	slices.SortStableFunc(c, func(a, b Attr) int { return strings.Compare(a.Key, b.Key) })
	return c.kv(";")
}

// MarshalText prints the structured form (Tag.String), so YAML files and text
// encoders show a tag as one readable line.
func (t Tag) MarshalText() ([]byte, error) {
	return []byte(t.String()), nil
}

// UnmarshalText parses the structured form (ParseKV).
func (t *Tag) UnmarshalText(b []byte) error {
	v, err := ParseKV(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// MarshalJSON encodes t as a JSON object in tag order:
// {"manufacturer":"Acme Corp.","zone":"South"}.
func (t Tag) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, a := range t {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(a.Key)
		if err != nil {
			return nil, fmt.Errorf("tagmatch: marshal key %q: %w", a.Key, err)
		}
		v, err := json.Marshal(a.Value)
		if err != nil {
			return nil, fmt.Errorf("tagmatch: marshal %s: %w", a.Key, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON accepts a JSON object (order kept), an array of
// {"key":...,"value":...} objects, a string in the structured form, or null. The
// result is normalised (Tag.Normalize); a duplicate key is an error.
func (t *Tag) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	var out Tag
	switch {
	case bytes.Equal(b, []byte("null")):
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("tagmatch: tag: %w", err)
		}
		v, err := ParseKV(s)
		if err != nil {
			return err
		}
		*t = v
		return nil
	case len(b) > 0 && b[0] == '[':
		var attrs []Attr
		if err := json.Unmarshal(b, &attrs); err != nil {
			return fmt.Errorf("tagmatch: tag: %w", err)
		}
		out = attrs
	default:
		var err error
		if out, err = decodeJSONObject(b); err != nil {
			return err
		}
	}
	n, err := out.Normalize()
	if err != nil {
		return err
	}
	*t = n
	return nil
}

func decodeJSONObject(b []byte) (Tag, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("tagmatch: tag: want a JSON object, array or string: %w", ErrInvalidTag)
	}
	var out Tag
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("tagmatch: tag: %w", err)
		}
		key, _ := tok.(string)
		var v string
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("tagmatch: tag: value of %q: %w", key, err)
		}
		if len(out) >= MaxAttrs {
			return nil, fmt.Errorf("tagmatch: tag: more than %d attributes: %w", MaxAttrs, ErrInvalidTag)
		}
		out = append(out, Attr{Key: key, Value: v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("tagmatch: tag: %w", err)
	}
	return out, nil
}
