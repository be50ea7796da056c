package tagmatch

import (
	"errors"
	"fmt"
)

// ErrIdentityMismatch is wrapped by every *IdentityError: a device's live tag
// contradicts the tag it is registered with.
var ErrIdentityMismatch = errors.New("live tag contradicts the registered tag")

// DefaultIdentityKeys returns the keys that say what a device is (and not
// where it is or how it is set up): manufacturer, product and model.
func DefaultIdentityKeys() []string {
	return []string{KeyManufacturer, KeyProduct, KeyModel}
}

// IdentityError says which identity key a live tag contradicts: the
// registered value and the live one, or that the live tag lacks the key.
type IdentityError struct {
	Key        string
	Registered string
	Live       string
	Missing    bool // the live tag has no value for Key
}

func (e *IdentityError) Error() string {
	if e.Missing {
		return fmt.Sprintf("registered with %s %q, but the device's tag has no %s", e.Key, e.Registered, e.Key)
	}
	return fmt.Sprintf("registered with %s %q, but the device says %q", e.Key, e.Registered, e.Live)
}

func (e *IdentityError) Unwrap() error { return ErrIdentityMismatch }

// CheckIdentityKeys normalises identity keys and checks each is a valid key
// given once; an empty list means DefaultIdentityKeys.
func CheckIdentityKeys(keys []string) ([]string, error) {
	if len(keys) == 0 {
		return DefaultIdentityKeys(), nil
	}
	out := make([]string, 0, len(keys))
	seen := map[string]bool{}
	for _, k := range keys {
		n := NormalizeKey(k)
		if !ValidKey(n) {
			return nil, fmt.Errorf("%w: identity key %q is not a valid tag key", ErrInvalidTag, k)
		}
		if seen[n] {
			return nil, fmt.Errorf("%w: identity key %q is given twice", ErrInvalidTag, n)
		}
		seen[n] = true
		out = append(out, n)
	}
	return out, nil
}

// Identity returns the attributes of registered that keys name, in the order
// of keys: what a device must keep saying about itself. keys must be
// normalised (CheckIdentityKeys).
func Identity(registered Tag, keys []string) Tag {
	var out Tag
	for _, k := range keys {
		if v, ok := registered.Get(k); ok {
			out = append(out, Attr{Key: k, Value: v})
		}
	}
	return out
}

// CheckIdentity reports whether a device's live tag keeps the identity it is
// registered with (docs/spec/tagmatch.md, "Tag trust"): for every key of
// identity (Identity of the registered tag), the live tag must have the key
// with exactly the same value. Keys the registered tag lacks are not checked,
// so a device registered without a tag is never contradicted. The error is
// an *IdentityError for the first key that differs.
func CheckIdentity(identity, live Tag) error {
	for _, a := range identity {
		v, ok := live.Get(a.Key)
		switch {
		case !ok:
			return &IdentityError{Key: a.Key, Registered: a.Value, Missing: true}
		case v != a.Value:
			return &IdentityError{Key: a.Key, Registered: a.Value, Live: v}
		}
	}
	return nil
}
