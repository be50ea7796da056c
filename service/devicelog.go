package service

import (
	"context"
	"fmt"
	"time"

	"github.com/fleetvault/fleetvault/grouprestore"
)

// DeviceJobEntry is one job's outcome for one device: what the device's
// log of backups and restores shows.
type DeviceJobEntry struct {
	Job     string                     `json:"job"`
	Kind    grouprestore.Kind          `json:"kind"`
	Created time.Time                  `json:"created"`
	Outcome grouprestore.DeviceOutcome `json:"outcome"`
}

// maxJobsScanned bounds how many of the newest jobs DeviceLog reads.
const maxJobsScanned = 200

// DeviceLog returns the outcomes of device id in the newest jobs that
// reached it (at most limit, newest first, among the newest maxJobsScanned
// jobs): its backups and restores, failed ones with their reasons and
// retries. The device must be the caller's.
func (ss *Session) DeviceLog(_ context.Context, id string, limit int) ([]DeviceJobEntry, error) {
	if _, err := ss.device(id); err != nil {
		return nil, err
	}
	if ss.s.eng == nil {
		return nil, errorf(ErrUnprocessable, "jobs run in the server: start one with fleetvault serve")
	}
	recs, err := ss.s.eng.Jobs()
	if err != nil {
		return nil, fmt.Errorf("read the job journal: %w", err)
	}
	out := []DeviceJobEntry{}
	for i, rec := range recs {
		if i == maxJobsScanned || len(out) == limit {
			break
		}
		j, err := ss.s.eng.Job(rec.ID)
		if err != nil {
			continue // a job whose journal entry went away since the listing
		}
		for _, d := range j.Devices() {
			if d.Device == id {
				out = append(out, DeviceJobEntry{Job: rec.ID, Kind: rec.Spec.Kind, Created: time.UnixMilli(rec.Created).UTC(), Outcome: d})
				break
			}
		}
	}
	return out, nil
}
