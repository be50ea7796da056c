package catalog

import (
	"errors"
	"fmt"
	"io/fs"
)

// Sentinel errors, checked with errors.Is.
var (
	// ErrNotFound: no such piece, device, group or content.
	ErrNotFound = errors.New("not found")
	// ErrExists: Init found an installation already there, or a group exists.
	ErrExists = errors.New("already exists")
	// ErrCorrupt: a file, record or content object is damaged.
	ErrCorrupt = errors.New("corrupt")
	// ErrInvalid: bad input (a malformed MBR, record, export or argument).
	ErrInvalid = errors.New("invalid")
	// ErrReadOnly: a write on a catalog opened with Options.ReadOnly.
	ErrReadOnly = errors.New("opened read-only")
)

// More sentinel errors, checked with errors.Is.
var (
	// ErrLocked: another process (a running server) holds the file open.
	ErrLocked = errors.New("locked by another process")
	// ErrMissing: a file the MBR names does not exist (a *MissingError).
	ErrMissing = errors.New("missing")
	// ErrKeyRequired: the installation is encrypted and no key was given.
	ErrKeyRequired = errors.New("the installation is encrypted: a passphrase is required")
	// ErrWrongKey: the key given is not this installation's repository key.
	ErrWrongKey = errors.New("the key is not this installation's repository key")
)

// MissingError is a file of the installation that does not exist. Only
// Init creates them: a missing one was deleted, moved or never copied, and
// creating it empty would hide the loss.
type MissingError struct {
	Path string // the file
	What string // what it is: "resource database", "job journal", ...
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("the %s %s is missing: only `fleetvault init` creates the files of an installation; "+
		"restore it from a copy of the installation, or correct its path in the master backup record", e.What, e.Path)
}

// Unwrap makes errors.Is(err, ErrMissing) and errors.Is(err, fs.ErrNotExist) hold.
func (e *MissingError) Unwrap() []error { return []error{ErrMissing, fs.ErrNotExist} }
