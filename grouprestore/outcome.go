package grouprestore

import (
	"fmt"

	"github.com/fleetvault/fleetvault/settingsdoc"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// State is where a device stands in a job. The final states are Restored (or
// BackedUp), NoMatch, Ambiguous, Unsupported, TagMismatch, Offline, Rejected,
// Failed and Skipped.
type State string

const (
	Pending   State = "pending"   // not started yet
	Writing   State = "writing"   // intent journaled: the settings may have been sent
	Restored  State = "restored"  // written and verified by hash
	BackedUp  State = "backed-up" // a group backup stored its settings
	NoMatch   State = "no-match"  // no backed-up tag matches the device's
	Ambiguous State = "ambiguous" // two candidates match equally well: nothing written
	// Unsupported: the device does not announce the capabilities a write
	// needs (agent.WriteCapabilities): nothing written.
	Unsupported State = "unsupported"
	// TagMismatch: the device's live tag contradicts its registered tag on
	// an identity key; nothing was stored or written.
	TagMismatch State = "tag-mismatch"
	Offline     State = "offline"  // no answer within the offline time-to-live
	Rejected    State = "rejected" // the device refused the settings
	Failed      State = "failed"   // an error, with the reason
	Skipped     State = "skipped"  // not attempted: the job was cancelled or aborted
)

// FinalStates lists the final states in report order.
var FinalStates = []State{Restored, BackedUp, InSync, Drifted, Unknown, NoMatch, Ambiguous, Unsupported, TagMismatch, Offline, Rejected, Failed, Skipped}

// Final reports whether s is a final state.
func (s State) Final() bool { return s != Pending && s != Writing }

// DeviceOutcome is one device's record in a job: the plan entry and, once the
// device is done, its final state and a reason a person can read.
type DeviceOutcome struct {
	Device   string `cbor:"dev" json:"device"`
	Ident    string `cbor:"ident" json:"identifier"` // the probe identifier: where and how to reach it
	State    State  `cbor:"state" json:"state"`
	Reason   string `cbor:"reason,omitempty" json:"reason,omitempty"`
	Piece    string `cbor:"piece,omitempty" json:"piece,omitempty"`       // the backed-up piece chosen
	Hash     string `cbor:"hash,omitempty" json:"hash,omitempty"`         // hex SHA-256 of the settings written
	Snapshot string `cbor:"snap,omitempty" json:"snapshot,omitempty"`     // piece id of the pre-restore snapshot
	Document string `cbor:"doc,omitempty" json:"document,omitempty"`      // piece id of the document a profile computed and the device got
	Attempts int    `cbor:"attempts,omitempty" json:"attempts,omitempty"` // tries, retries included
	Time     int64  `cbor:"t,omitempty" json:"time_unix_ms,omitempty"`
	// Identity is the device's registered tag on the job's identity keys,
	// frozen at plan time: what its live tag must keep saying (tag trust).
	Identity tagmatch.Tag `cbor:"idn,omitempty" json:"identity,omitempty"`

	// Drift: the job whose write is the device's reference, and how the
	// device differs from what it should hold.
	RefJob string            `cbor:"ref,omitempty" json:"reference_job,omitempty"`
	Diff   *settingsdoc.Diff `cbor:"diff,omitempty" json:"diff,omitempty"`
}

func (o DeviceOutcome) String() string {
	if o.Reason == "" {
		return fmt.Sprintf("%s: %s", o.Device, o.State)
	}
	return fmt.Sprintf("%s: %s: %s", o.Device, o.State, o.Reason)
}
