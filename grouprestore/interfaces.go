package grouprestore

import (
	"context"
	"time"

	"github.com/fleetvault/fleetvault/identifiers"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// Target is one member of a device group and where to reach it: the scheme,
// address and port of its identifier (mqtt://home1-climate, coap://127.0.0.1:5683).
type Target struct {
	ID    string
	Ident identifiers.ID
	Tag   tagmatch.Tag // the tag it is registered with; nil when none
}

// Directory resolves a device group to its members (the resource database).
type Directory interface {
	// Members returns the group's devices in plan order.
	Members(ctx context.Context, group string) ([]Target, error)
}

// Piece is a backed-up settings document the engine can match and write.
type Piece struct {
	ID     string       // the catalog's piece id
	Client string       // the device it was backed up from
	Tag    tagmatch.Tag // that device's tag at backup time
	Hash   string       // hex SHA-256 of the settings (the content reference)
}

// NewPiece is a settings document to store: a group backup's piece or a
// restore's pre-restore snapshot.
type NewPiece struct {
	Client   string
	Group    string // the backup group it belongs to
	Type     string // "settings" for a backup, "snapshot" for an undo snapshot
	Job      string
	Location string // the identifier it was read with
	Tag      tagmatch.Tag
	Settings []byte // deterministic CBOR
	Time     time.Time
}

// RestoreRecord is one line of the catalog's restore history.
type RestoreRecord struct {
	Job    string
	Device string
	Piece  string
	Hash   string // hex SHA-256 of the settings written and verified; "" unless restored
	State  State
	Reason string
	Time   time.Time
}

// Catalog is what the engine needs of the backup catalog.
type Catalog interface {
	// Candidates returns the pieces of a backup group a device can match:
	// the newest piece of each client in the group.
	Candidates(ctx context.Context, group string) ([]Piece, error)
	// Piece returns one piece by id.
	Piece(ctx context.Context, id string) (Piece, error)
	// Content returns a piece's settings, hash-checked.
	Content(ctx context.Context, hash string) ([]byte, error)
	// Store stores pieces durably in one batch and returns them in order.
	Store(ctx context.Context, pieces []NewPiece) ([]Piece, error)
	// JobPiece returns the piece of type typ (Store's NewPiece.Type) that
	// job stored for client at or after since, and whether there is one. A
	// job asks before storing a piece it may have stored already, so it
	// never stores two (a resumed job, a retried write).
	JobPiece(ctx context.Context, job, client, typ string, since time.Time) (Piece, bool, error)
	// RecordRestores adds lines to the restore history; a repeated
	// (job, device) line replaces the earlier one.
	RecordRestores(ctx context.Context, records []RestoreRecord) error
}
