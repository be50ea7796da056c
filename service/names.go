package service

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxName is the longest name of a device, group or user, in bytes.
const maxName = 256

// CheckName refuses a name (of a device, group or user; what says which)
// that a person could not read or could be fooled by: empty, only spaces,
// not UTF-8, longer than 256 bytes, or holding a control character or a
// bidirectional-text control (U+202E RIGHT-TO-LEFT OVERRIDE makes
// "home1\u202Etxt.exe" display as another name). Spaces inside a name are
// fine ("Backup Group of Devices").
func CheckName(what, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("a %s name is required", what)
	case strings.TrimSpace(name) == "":
		return fmt.Errorf("a %s name cannot be only spaces", what)
	case len(name) > maxName:
		return fmt.Errorf("a %s name is at most %d bytes", what, maxName)
	case !utf8.ValidString(name):
		return fmt.Errorf("a %s name must be valid UTF-8", what)
	}
	for i, r := range name {
		switch {
		case unicode.IsControl(r):
			return fmt.Errorf("a %s name may not hold control characters (%q has %U at byte %d)", what, name, r, i)
		case unicode.Is(unicode.Bidi_Control, r):
			return fmt.Errorf("a %s name may not hold bidirectional-text controls (%q has %U at byte %d)", what, name, r, i)
		}
	}
	return nil
}
