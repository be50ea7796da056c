package settingsdoc

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Wildcard is the reference token that selects every member or element at one level.
const Wildcard = "*"

// Errors a pointer or profile returns, checked with errors.Is.
var (
	ErrPointer = errors.New("invalid pointer")
	ErrProfile = errors.New("invalid profile")
	// ErrApply means a profile cannot be applied to one device's documents.
	ErrApply = errors.New("profile cannot be applied")
)

// Pointer is a parsed JSON Pointer: its unescaped reference tokens.
type Pointer []string

// ParsePointer parses RFC 6901 text. The empty pointer (the whole document)
// is refused: a profile addresses parts of a document.
func ParsePointer(s string) (Pointer, error) {
	if s == "" {
		return nil, fmt.Errorf("%w %q: a profile pointer names a part of the document, e.g. /name", ErrPointer, s)
	}
	if !strings.HasPrefix(s, "/") {
		return nil, fmt.Errorf("%w %q: a pointer starts with /, e.g. /name", ErrPointer, s)
	}
	parts := strings.Split(s[1:], "/")
	p := make(Pointer, len(parts))
	for i, raw := range parts {
		tok, err := unescape(raw)
		if err != nil {
			return nil, fmt.Errorf("%w %q: token %d: %v", ErrPointer, s, i+1, err)
		}
		p[i] = tok
	}
	return p, nil
}

func unescape(s string) (string, error) {
	if !strings.Contains(s, "~") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '~' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) || (s[i+1] != '0' && s[i+1] != '1') {
			return "", errors.New("~ must be followed by 0 (for ~) or 1 (for /)")
		}
		if s[i+1] == '0' {
			b.WriteByte('~')
		} else {
			b.WriteByte('/')
		}
		i++
	}
	return b.String(), nil
}

// Escape returns a key as a reference token (RFC 6901: ~ as ~0, / as ~1).
func Escape(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

// String returns the pointer's RFC 6901 text.
func (p Pointer) String() string {
	var b strings.Builder
	for _, t := range p {
		b.WriteByte('/')
		b.WriteString(Escape(t))
	}
	return b.String()
}

func (p Pointer) wild() bool {
	for _, t := range p {
		if t == Wildcard {
			return true
		}
	}
	return false
}

// expand returns the concrete pointers p selects in doc, in a stable order.
// A pointer without a wildcard is returned as is, whether doc holds it or not.
func expand(doc any, p Pointer) []Pointer {
	if !p.wild() {
		return []Pointer{p}
	}
	var out []Pointer
	var walk func(v any, i int, at Pointer)
	walk = func(v any, i int, at Pointer) {
		if i == len(p) {
			out = append(out, append(Pointer(nil), at...))
			return
		}
		if p[i] != Wildcard {
			if c, ok := child(v, p[i]); ok {
				walk(c, i+1, append(at, p[i]))
			}
			return
		}
		for _, k := range keys(v) {
			c, _ := child(v, k)
			walk(c, i+1, append(at, k))
		}
	}
	walk(doc, 0, nil)
	return out
}

// union merges the concrete pointers of a and b, without repeats, in order.
func union(a, b []Pointer) []Pointer {
	seen := make(map[string]bool, len(a)+len(b))
	var out []Pointer
	for _, l := range [][]Pointer{a, b} {
		for _, p := range l {
			if s := p.String(); !seen[s] {
				seen[s] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// keys lists the members of a map (text keys, sorted) or the indexes of an
// array; anything else has none.
func keys(v any) []string {
	var ks []string
	switch x := v.(type) {
	case map[string]any:
		for k := range x {
			ks = append(ks, k)
		}
	case map[any]any:
		for k := range x {
			if s, ok := k.(string); ok {
				ks = append(ks, s)
			}
		}
	case []any:
		for i := range x {
			ks = append(ks, strconv.Itoa(i))
		}
		return ks
	}
	sort.Strings(ks)
	return ks
}

// index parses an array token: a decimal index without leading zeros.
func index(tok string, n int) (int, bool) {
	if tok == "" || (len(tok) > 1 && tok[0] == '0') {
		return 0, false
	}
	i, err := strconv.Atoi(tok)
	if err != nil || i < 0 || i >= n {
		return 0, false
	}
	return i, true
}

// child returns the member or element tok of v.
func child(v any, tok string) (any, bool) {
	switch x := v.(type) {
	case map[string]any:
		c, ok := x[tok]
		return c, ok
	case map[any]any:
		c, ok := x[tok]
		return c, ok
	case []any:
		i, ok := index(tok, len(x))
		if !ok {
			return nil, false
		}
		return x[i], true
	}
	return nil, false
}

// get returns the value at p in doc.
func get(doc any, p Pointer) (any, bool) {
	v := doc
	for _, t := range p {
		c, ok := child(v, t)
		if !ok {
			return nil, false
		}
		v = c
	}
	return v, true
}

// set puts val at p in doc, creating missing maps on the way. It fails when
// the way passes a value that is neither a map nor an array, or an array
// index that does not exist.
func set(doc any, p Pointer, val any) error {
	v := doc
	for i, t := range p {
		last := i == len(p)-1
		switch x := v.(type) {
		case map[string]any:
			if last {
				x[t] = val
				return nil
			}
			if _, ok := x[t]; !ok {
				x[t] = map[any]any{}
			}
			v = x[t]
		case map[any]any:
			if last {
				x[t] = val
				return nil
			}
			if _, ok := x[t]; !ok {
				x[t] = map[any]any{}
			}
			v = x[t]
		case []any:
			j, ok := index(t, len(x))
			if !ok {
				return fmt.Errorf("%w: %s: %s has no element %q (an array of %d; a profile replaces existing elements only)", ErrApply, p, p[:i], t, len(x))
			}
			if last {
				x[j] = val
				return nil
			}
			v = x[j]
		default:
			return fmt.Errorf("%w: %s: %s holds a %s, not a map or an array", ErrApply, p, Pointer(p[:i]), kind(v))
		}
	}
	return nil
}

// remove deletes the member at p; a missing member is no error. Removing an
// array element is refused: it would shift the elements after it.
func remove(doc any, p Pointer) error {
	parent, ok := get(doc, p[:len(p)-1])
	if !ok {
		return nil
	}
	t := p[len(p)-1]
	switch x := parent.(type) {
	case map[string]any:
		delete(x, t)
	case map[any]any:
		delete(x, t)
	case []any:
		if _, ok := index(t, len(x)); ok {
			return fmt.Errorf("%w: %s: one side has this array element and the other has not; a profile does not remove array elements: name the whole array %s instead", ErrApply, p, Pointer(p[:len(p)-1]))
		}
	}
	return nil
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "text string"
	case []byte:
		return "byte string"
	case bool:
		return "boolean"
	case float32, float64:
		return "float"
	case map[string]any, map[any]any:
		return "map"
	case []any:
		return "array"
	}
	return "number"
}

// clone deep-copies maps and arrays.
func clone(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, c := range x {
			out[k] = clone(c)
		}
		return out
	case map[any]any:
		out := make(map[any]any, len(x))
		for k, c := range x {
			out[k] = clone(c)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, c := range x {
			out[i] = clone(c)
		}
		return out
	case []byte:
		return append([]byte(nil), x...)
	}
	return v
}
