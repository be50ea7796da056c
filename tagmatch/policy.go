package tagmatch

import (
	"fmt"
	"slices"
	"strings"
)

// Op is a selector's comparison.
type Op int

// The selector operators. Ordering operators compare versions (CompareVersions);
// the others compare strings, case-insensitively when Policy.IgnoreCase is set.
const (
	OpEq      Op = iota + 1 // key = value
	OpNe                    // key != value (also holds when the device lacks key)
	OpLt                    // key < version
	OpLe                    // key <= version
	OpGt                    // key > version
	OpGe                    // key >= version
	OpIn                    // key in (v1, v2, ...)
	OpNotIn                 // key not in (v1, v2, ...) (also holds when the device lacks key)
	OpGlob                  // key ~ pattern: * any run, ? one character, \ escapes
	OpNotGlob               // key !~ pattern (also holds when the device lacks key)
)

var opText = [...]string{OpEq: "=", OpNe: "!=", OpLt: "<", OpLe: "<=", OpGt: ">", OpGe: ">=",
	OpIn: "in", OpNotIn: "not in", OpGlob: "~", OpNotGlob: "!~"}

// String returns the operator as the policy language writes it.
func (o Op) String() string {
	if o < OpEq || o > OpNotGlob {
		return fmt.Sprintf("Op(%d)", int(o))
	}
	return opText[o]
}

func (o Op) isList() bool { return o == OpIn || o == OpNotIn }

// Selector restricts which devices a policy restores to: a device whose tag fails
// any selector is not matched at all.
type Selector struct {
	Key    string   // normalised key
	Op     Op       //
	Values []string // exactly one value, or one or more for OpIn and OpNotIn
}

// Policy says how a backup group's pieces are matched to devices.
// The zero Policy is the default: the keys of DefaultEqualKeys must be equal,
// values compared exactly, no selectors.
type Policy struct {
	// Equal lists the keys that must be equal: for each such key a candidate has,
	// the device must have the same value. A key the candidate lacks is a wildcard.
	// nil means DefaultEqualKeys(); an empty non-nil list is invalid.
	Equal []string
	// AllKeys, written equal(*), makes every key a candidate has an equality key.
	// Equal must then be nil.
	AllKeys bool
	// IgnoreCase compares values (equality keys and selectors) after Unicode
	// lower-casing. Keys are always case-insensitive.
	IgnoreCase bool
	// Selectors restrict the devices matched; all must hold.
	Selectors []Selector
}

// DefaultEqualKeys returns the equality keys of the zero Policy: manufacturer,
// product, model and zone. Firmware is left out so a restore reaches devices on
// any firmware unless a selector says otherwise.
func DefaultEqualKeys() []string {
	return []string{KeyManufacturer, KeyProduct, KeyModel, KeyZone}
}

// EqualKeys returns the equality keys in effect (nil when AllKeys is set).
func (p Policy) EqualKeys() []string {
	if p.AllKeys {
		return nil
	}
	if p.Equal == nil {
		return DefaultEqualKeys()
	}
	return slices.Clone(p.Equal)
}

// Validate checks p: keys normalised and valid, no key twice in Equal, Equal
// non-empty when given, not both Equal and AllKeys, each selector with a known
// operator, the right number of values and valid values. The error wraps
// ErrInvalidPolicy.
func (p Policy) Validate() error {
	if p.AllKeys && p.Equal != nil {
		return fmt.Errorf("tagmatch: policy: equal(*) and an equal key list together: %w", ErrInvalidPolicy)
	}
	if p.Equal != nil && len(p.Equal) == 0 {
		return fmt.Errorf("tagmatch: policy: empty equal key list: %w", ErrInvalidPolicy)
	}
	for i, k := range p.Equal {
		if !isCanonicalKey(k) {
			return fmt.Errorf("tagmatch: policy: equal key %q is not a normalised key: %w", k, ErrInvalidPolicy)
		}
		if slices.Contains(p.Equal[:i], k) {
			return fmt.Errorf("tagmatch: policy: equal key %q given twice: %w", k, ErrInvalidPolicy)
		}
	}
	for i, s := range p.Selectors {
		if err := s.validate(); err != nil {
			return fmt.Errorf("tagmatch: policy: selector %d: %w: %w", i+1, err, ErrInvalidPolicy)
		}
	}
	return nil
}

func (s Selector) validate() error {
	if !isCanonicalKey(s.Key) {
		return fmt.Errorf("key %q is not a normalised key", s.Key)
	}
	if s.Op < OpEq || s.Op > OpNotGlob {
		return fmt.Errorf("%s: unknown operator %d", s.Key, int(s.Op))
	}
	if s.Op.isList() && len(s.Values) == 0 {
		return fmt.Errorf("%s %s: empty list", s.Key, s.Op)
	}
	if !s.Op.isList() && len(s.Values) != 1 {
		return fmt.Errorf("%s %s: want one value, have %d", s.Key, s.Op, len(s.Values))
	}
	for _, v := range s.Values {
		if msg := checkValue(v); msg != "" {
			return fmt.Errorf("%s %s: %s", s.Key, s.Op, msg)
		}
	}
	return nil
}

// String prints p in the policy language; ParsePolicy reads it back to p for a p
// that passes Validate. The zero Policy prints as "".
func (p Policy) String() string {
	var parts []string
	switch {
	case p.AllKeys:
		parts = append(parts, "equal(*)")
	case p.Equal != nil:
		parts = append(parts, "equal("+strings.Join(p.Equal, ", ")+")")
	}
	if p.IgnoreCase {
		parts = append(parts, "ignorecase")
	}
	for _, s := range p.Selectors {
		parts = append(parts, s.String())
	}
	return strings.Join(parts, ", ")
}

// String prints the selector in the policy language, e.g. `model in (xyz, xyz2)`.
func (s Selector) String() string {
	if s.Op.isList() {
		vs := make([]string, len(s.Values))
		for i, v := range s.Values {
			vs[i] = policyValue(v)
		}
		return s.Key + " " + s.Op.String() + " (" + strings.Join(vs, ", ") + ")"
	}
	v := ""
	if len(s.Values) > 0 {
		v = policyValue(s.Values[0])
	}
	return s.Key + " " + s.Op.String() + " " + v
}

// policyValue returns v bare when the policy language reads it back bare, else quoted.
func policyValue(v string) string {
	if v == "" || strings.ContainsAny(v, policySpecials) || strings.TrimSpace(v) != v {
		return quote(v)
	}
	return v
}
