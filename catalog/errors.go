package catalog

import "errors"

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

// ErrLocked: another process (a running server) holds the file open.
var ErrLocked = errors.New("locked by another process")
