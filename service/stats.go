package service

import (
	"context"
	"errors"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
)

// Stats sums the history of job outcomes per day and in total over the
// devices q selects: an owner's (q.Owner), a device group's (q.Group), or
// every device the caller may see. An owner sees only their own devices'
// statistics.
func (ss *Session) Stats(_ context.Context, q apiclient.StatsQuery) (apiclient.Stats, error) {
	devices, err := ss.statsDevices(q)
	if err != nil {
		return apiclient.Stats{}, err
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		return apiclient.Stats{}, &FieldError{Field: "until", Problem: "is before since"}
	}
	out := apiclient.Stats{Days: []apiclient.StatsRow{}}
	if out.RetentionDays, err = ss.s.cat.HistoryRetention(); err != nil {
		return out, err
	}
	if !q.Since.IsZero() {
		out.Since = q.Since.UTC().Format(catalog.DayLayout)
	}
	if !q.Until.IsZero() {
		out.Until = q.Until.UTC().Format(catalog.DayLayout)
	}
	acc := NewStatsAccumulator(devices)
	if devices == nil {
		// Every device: the catalog's sums per day, two records a day.
		err = ss.s.cat.HistoryTotals(q.Since, q.Until, acc.Add)
	} else {
		err = ss.s.cat.HistoryOf(q.Since, q.Until, devices, acc.Add)
	}
	if err != nil {
		return out, err
	}
	sum := acc.Stats()
	out.Days, out.Total, out.Devices = sum.Days, sum.Total, sum.Devices
	if devices == nil {
		out.Devices = 0
		err = ss.s.cat.Devices(func(catalog.Device) error { out.Devices++; return nil })
	}
	return out, err
}

// statsDevices is the set of devices q selects for the caller; nil selects
// every device (and the history of deleted ones).
func (ss *Session) statsDevices(q apiclient.StatsQuery) (map[string]bool, error) {
	owner := q.Owner
	if ss.id.owner() {
		if owner != "" && owner != ss.id.User {
			return nil, ss.id.forbid("see the statistics of another owner's devices")
		}
		owner = ss.id.User
	}
	var members map[string]bool
	if q.Group != "" {
		g, err := ss.s.cat.Group(q.Group)
		if errors.Is(err, catalog.ErrNotFound) || (err == nil && (!ss.id.ownsGroup(g) || g.Kind == catalog.GroupBackup)) {
			return nil, errorf(ErrNotFound, "no device group %q; list them with GET /api/v1/groups", q.Group)
		}
		if err != nil {
			return nil, err
		}
		ids, err := ss.s.cat.Members(q.Group)
		if err != nil {
			return nil, err
		}
		members = make(map[string]bool, len(ids))
		for _, id := range ids {
			members[id] = true
		}
	}
	if owner == "" {
		return members, nil
	}
	set := map[string]bool{}
	err := ss.s.cat.Devices(func(d catalog.Device) error {
		if d.Owner == owner && (members == nil || members[d.ID]) {
			set[d.ID] = true
		}
		return nil
	})
	return set, err
}

// SetStatsRetention sets how many days of history are kept (serve prunes
// older days daily). Only an admin may.
func (ss *Session) SetStatsRetention(_ context.Context, days int) error {
	return ss.audited("stats.retention", []string{"history"}, func() error {
		if err := ss.id.requireAdmin("set the history's retention"); err != nil {
			return err
		}
		if days < 1 {
			return &FieldError{Field: "days", Problem: "must be at least 1"}
		}
		return ss.s.cat.SetHistoryRetention(days)
	})
}

// StatsAccumulator sums history records, given in day order, into per-day
// rows and a total. Records of devices outside its selection are skipped;
// without a selection it sums every record (a day's sums included).
type StatsAccumulator struct {
	devices map[string]bool // nil: all
	seen    map[string]bool
	days    []statsSum
	total   statsSum
}

// statsSum is a StatsRow being summed, restore times in whole milliseconds
// so that sums are exact.
type statsSum struct {
	apiclient.StatsRow
	restoreMS, restoreMaxMS int64
}

// NewStatsAccumulator sums the records of devices (nil: of every device).
func NewStatsAccumulator(devices map[string]bool) *StatsAccumulator {
	return &StatsAccumulator{devices: devices, seen: map[string]bool{}, total: statsSum{StatsRow: apiclient.StatsRow{Day: "total"}}}
}

// Add sums h (catalog.History's callback; it never fails).
func (a *StatsAccumulator) Add(h catalog.HistoryRecord) error {
	if a.devices != nil && !a.devices[h.Device] {
		return nil
	}
	a.seen[h.Device] = true
	if n := len(a.days); n == 0 || a.days[n-1].Day != h.Day {
		a.days = append(a.days, statsSum{StatsRow: apiclient.StatsRow{Day: h.Day}})
	}
	addHistory(&a.days[len(a.days)-1], h)
	addHistory(&a.total, h)
	return nil
}

// Stats returns the sums: Days, Total and Devices (how many devices had
// history, or were selected).
func (a *StatsAccumulator) Stats() apiclient.Stats {
	out := apiclient.Stats{Days: make([]apiclient.StatsRow, len(a.days)), Total: a.total.row(), Devices: len(a.seen)}
	if a.devices != nil {
		out.Devices = len(a.devices)
	}
	for i := range a.days {
		out.Days[i] = a.days[i].row()
	}
	return out
}

// row is the finished row: seconds and the success rate.
func (s statsSum) row() apiclient.StatsRow {
	r := s.StatsRow
	r.RestoreSecondsTotal = float64(s.restoreMS) / 1000
	r.RestoreSecondsMax = float64(s.restoreMaxMS) / 1000
	if n := r.BackupAttempts + r.RestoreAttempts; n > 0 {
		r.SuccessRate = float64(r.BackupSuccesses+r.RestoreSuccesses) / float64(n)
	}
	return r
}

func addHistory(r *statsSum, h catalog.HistoryRecord) {
	switch h.Kind {
	case catalog.HistoryBackup:
		r.BackupAttempts += h.Attempts
		r.BackupSuccesses += h.Successes
		r.BackupFailures += h.Failures
	case catalog.HistoryRestore:
		r.RestoreAttempts += h.Attempts
		r.RestoreSuccesses += h.Successes
		r.RestoreFailures += h.Failures
	}
	r.BytesBackedUp += h.Bytes
	r.restoreMS += h.RestoreMSSum
	r.restoreMaxMS = max(r.restoreMaxMS, h.RestoreMSMax)
	r.RPOMisses += h.RPOMisses
}
