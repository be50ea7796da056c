package identifiers

import (
	"errors"
	"testing"
	"unicode/utf8"
)

// FuzzParse checks that no input panics, that errors are *SyntaxError with a
// column inside the input, and that whatever parses round-trips through its
// canonical form.
func FuzzParse(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(v.Input)
		if v.Output != nil {
			f.Add(*v.Output)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error %T, want *SyntaxError", s, err)
			}
			if se.Column < 1 || se.Column > utf8.RuneCountInString(s)+1 {
				t.Fatalf("Parse(%q) column %d outside the input", s, se.Column)
			}
			if se.Message == "" || se.Input != s {
				t.Fatalf("Parse(%q) bad SyntaxError %#v", s, se)
			}
			return
		}
		checkRoundTrip(t, id)
	})
}
