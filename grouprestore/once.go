package grouprestore

import (
	"context"
	"time"
)

// Exactly one piece per device per job. A job stores a device's piece in the
// catalog (its backup, or a restore's undo snapshot) and journals the
// device's outcome afterwards, in another file: a process killed between
// the two, or a write that failed after it may have committed, leaves a
// piece the journal does not know of. Before storing again, the job asks the
// catalog for the piece it already stored for that device (Catalog.JobPiece)
// and takes that one instead.

// clockSlack widens the catalog lookup of a job's pieces back from the job's
// creation, in case the clock was stepped back between two processes.
const clockSlack = time.Hour

// storeOnce stores a device's piece of this job, unless the job stored one
// for it before (a previous process, or an attempt whose failure may have
// committed all the same); either way it returns the device's one piece.
func (r *run) storeOnce(ctx context.Context, what string, np NewPiece) (Piece, error) {
	check := r.resumed
	since := time.UnixMilli(r.created).Add(-clockSlack)
	var p Piece
	err := r.durable(ctx, what, func() error {
		if check {
			prev, ok, err := r.e.cat.JobPiece(ctx, r.j.id, np.Client, np.Type, since)
			if err != nil {
				return err
			}
			if ok {
				p = prev
				r.e.log.Info("grouprestore: the job stored this device's piece before; not storing another", "job", r.j.id, "device", np.Client, "piece", prev.ID)
				return nil
			}
		}
		var err error
		p, err = r.e.store.Do(ctx, np)
		check = check || err != nil
		return err
	})
	return p, err
}
