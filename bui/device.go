package bui

import (
	"net/http"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/service"
)

// deviceView is a device page's data: its backups, and its log of jobs
// with every failure explained.
type deviceView struct {
	Device  apiclient.Device
	Backups []apiclient.Backup
	Log     []logLine
}

type logLine struct {
	service.DeviceJobEntry
	Plain  string
	Failed bool
}

// deviceLogLimit is how many job outcomes a device page shows.
const deviceLogLimit = 30

func (u *UI) device(rq *request) error {
	ctx, id := rq.r.Context(), rq.r.PathValue("id")
	d, err := rq.ss.DeviceDetail(ctx, id, 10)
	if err != nil {
		return err
	}
	v := deviceView{Device: d}
	if v.Backups, err = rq.ss.Backups(ctx, apiclient.BackupQuery{Client: id, Limit: 20}); err != nil {
		return err
	}
	entries, err := rq.ss.DeviceLog(ctx, id, deviceLogLimit)
	if err != nil {
		return err
	}
	for _, e := range entries {
		v.Log = append(v.Log, logLine{DeviceJobEntry: e, Plain: plainOutcome(e.Outcome), Failed: !succeeded(e)})
	}
	return u.page(rq, http.StatusOK, "device", "Device "+id, "overview", v)
}

// succeeded tells whether a job reached its end for the device.
func succeeded(e service.DeviceJobEntry) bool {
	switch e.Outcome.State {
	case grouprestore.Restored, grouprestore.BackedUp, grouprestore.Pending, grouprestore.Writing:
		return true
	}
	return false
}
