package service

import (
	"errors"
	"fmt"
	"strings"
)

// Kinds of error, checked with errors.Is; the API maps each to one status.
var (
	// ErrUnauthenticated: no credentials, or ones that are wrong, revoked or
	// of a disabled user (401).
	ErrUnauthenticated = errors.New("not authenticated")
	// ErrForbidden: the caller's role may not do this at all (403).
	ErrForbidden = errors.New("not allowed for this role")
	// ErrNotFound: no such object, or one the caller may not see: an owner
	// is told "not found" for another owner's objects, so that existence
	// does not leak (404).
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the request is malformed (400).
	ErrInvalid = errors.New("invalid request")
	// ErrConflict: the request clashes with the state (409).
	ErrConflict = errors.New("conflict")
	// ErrUnprocessable: a well-formed request the engine cannot carry out (422).
	ErrUnprocessable = errors.New("cannot be carried out")
)

// Error is an error of one Kind with a sentence for a person.
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Kind }

func errorf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// FieldError is a request field at fault; it is an ErrInvalid.
type FieldError struct {
	Field   string // e.g. "rollout.retries"
	Problem string
}

func (e *FieldError) Error() string {
	if strings.HasPrefix(e.Problem, "must ") || strings.HasPrefix(e.Problem, "is ") {
		return fmt.Sprintf("field %q %s", e.Field, e.Problem) // reads as a sentence
	}
	return fmt.Sprintf("field %q: %s", e.Field, e.Problem)
}

func (e *FieldError) Is(target error) bool { return target == ErrInvalid }
