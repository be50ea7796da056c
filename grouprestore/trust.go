package grouprestore

import (
	"fmt"
	"sync/atomic"

	"github.com/fleetvault/fleetvault/tagmatch"
)

// Tag trust (docs/spec/tagmatch.md, "Tag trust"): the resource database's tag
// is what a device is. A device whose live tag contradicts its registered tag
// on an identity key ends TagMismatch before anything is stored or written,
// and the engine raises an alert: a warning in the log and a count in Stats.

// stats are the engine's counters since it was created.
type stats struct {
	tagMismatches atomic.Uint64
	storageErrors atomic.Uint64
}

// Stats are counters an operator alerts on, since the engine was created.
type Stats struct {
	// TagMismatches counts devices whose live tag contradicted their
	// registered tag (each ended TagMismatch; nothing was written).
	TagMismatches uint64 `json:"tag_mismatches"`
	// StorageErrors counts failed writes to the journal or the catalog
	// (each paused its job until a retry succeeded).
	StorageErrors uint64 `json:"storage_errors"`
	// StoragePaused counts the jobs paused by a storage error now.
	StoragePaused int `json:"storage_paused"`
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	s := Stats{TagMismatches: e.stats.tagMismatches.Load(), StorageErrors: e.stats.storageErrors.Load()}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, j := range e.jobs {
		if j.storageError() != "" {
			s.StoragePaused++
		}
	}
	return s
}

// identityKeys fills in a spec's identity keys (the engine's when it names
// none) in their normalised form.
func (e *Engine) identityKeys(spec *Spec) error {
	if len(spec.Identity) == 0 {
		spec.Identity = e.identity
		return nil
	}
	keys, err := tagmatch.CheckIdentityKeys(spec.Identity)
	if err != nil {
		return fmt.Errorf("identity keys: %w", err)
	}
	spec.Identity = keys
	return nil
}

// distrust checks a probed device's live tag against its registered identity.
// It returns "" when the device may go on, else TagMismatch and the reason,
// after raising the alert. step names what was cut short (restore, backup...).
func (e *Engine) distrust(d DeviceOutcome, live tagmatch.Tag, step string) (State, string) {
	err := tagmatch.CheckIdentity(d.Identity, live)
	if err == nil {
		return "", ""
	}
	e.stats.tagMismatches.Add(1)
	e.log.Warn("grouprestore: a device's tag contradicts its registration; nothing written",
		"device", d.Device, "step", step, "registered", d.Identity.String(), "live", live.String(), "err", err)
	return TagMismatch, fmt.Sprintf("the device's tag contradicts its registration: %v; nothing stored or written (check the device, or correct its registered tag)", err)
}
