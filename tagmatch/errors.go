package tagmatch

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Sentinel errors, checked with errors.Is.
var (
	// ErrSyntax is wrapped by every *SyntaxError from ParseText, ParseKV and ParsePolicy.
	ErrSyntax = errors.New("syntax error")
	// ErrInvalidTag is wrapped when a tag breaks the model's rules (bad key, duplicate
	// key, control characters, over a limit).
	ErrInvalidTag = errors.New("invalid tag")
	// ErrInvalidPolicy is wrapped when a Policy value breaks the policy rules.
	ErrInvalidPolicy = errors.New("invalid policy")
	// ErrInvalidCandidate is wrapped by NewMatcher for a bad candidate list.
	ErrInvalidCandidate = errors.New("invalid candidate")
)

// SyntaxError says where a text form failed to parse. Col is the 1-based column,
// counted in characters (runes), of the offending input.
type SyntaxError struct {
	Form string // "text", "kv" or "policy"
	Col  int
	Msg  string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("tagmatch: parse %s: column %d: %s", e.Form, e.Col, e.Msg)
}

// Unwrap makes errors.Is(err, ErrSyntax) hold.
func (e *SyntaxError) Unwrap() error { return ErrSyntax }

// syntaxErr builds a *SyntaxError for byte offset off of input s.
func syntaxErr(form, s string, off int, format string, args ...any) error {
	if off > len(s) {
		off = len(s)
	}
	if off < 0 {
		off = 0
	}
	return &SyntaxError{Form: form, Col: utf8.RuneCountInString(s[:off]) + 1, Msg: fmt.Sprintf(format, args...)}
}
