package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"go.etcd.io/bbolt"

	"github.com/fleetvault/fleetvault/schedule"
)

// bktSchedules holds one JSON Schedule per schedule name (resource database).
var bktSchedules = []byte("schedules")

// Schedule is a backup schedule in the resource database: when the cron
// expression fires, the devices of DeviceGroup are backed up into
// BackupGroup, then BackupGroup's keep rule (KeepRules) is applied. RPO is
// the recovery point objective of each device of the group (0: none). Next
// is the next run, kept by the schedule loop (SetNextRun); zero until the
// loop first sees the schedule.
//
// Its JSON form (the resource database record and the JSON export) uses the
// columns of the standard's schedules table: name, device_group,
// backup_group, cron, rpo_seconds, next_run ("" or a timestamp).
type Schedule struct {
	Name        string
	DeviceGroup string
	BackupGroup string
	Cron        string
	RPO         time.Duration // whole seconds
	Next        time.Time
}

// scheduleRecord is Schedule in the standard's columns.
type scheduleRecord struct {
	Name        string `json:"name"`
	DeviceGroup string `json:"device_group"`
	BackupGroup string `json:"backup_group"`
	Cron        string `json:"cron"`
	RPOSeconds  int64  `json:"rpo_seconds"`
	NextRun     string `json:"next_run"`
}

// MarshalJSON writes the standard's columns.
func (s Schedule) MarshalJSON() ([]byte, error) { return json.Marshal(s.record()) }

// UnmarshalJSON reads the standard's columns; unknown fields are an error.
func (s *Schedule) UnmarshalJSON(b []byte) error {
	var r scheduleRecord
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return err
	}
	v, err := r.schedule()
	*s = v
	return err
}

func (s Schedule) record() scheduleRecord {
	r := scheduleRecord{Name: s.Name, DeviceGroup: s.DeviceGroup, BackupGroup: s.BackupGroup, Cron: s.Cron, RPOSeconds: int64(s.RPO / time.Second)}
	if !s.Next.IsZero() {
		r.NextRun = s.Next.UTC().Format(timeLayout)
	}
	return r
}

func (r scheduleRecord) schedule() (Schedule, error) {
	s := Schedule{Name: r.Name, DeviceGroup: r.DeviceGroup, BackupGroup: r.BackupGroup, Cron: r.Cron, RPO: time.Duration(r.RPOSeconds) * time.Second}
	if r.NextRun == "" {
		return s, nil
	}
	var err error
	s.Next, err = parseTime("schedule "+r.Name+" next_run", r.NextRun)
	return s, err
}

func (s Schedule) validate() error {
	for _, f := range []struct{ what, v string }{{"schedule name", s.Name}, {"device group", s.DeviceGroup}, {"backup group", s.BackupGroup}} {
		if err := checkName(f.what, f.v); err != nil {
			return fmt.Errorf("schedule %q: %w", s.Name, err)
		}
	}
	if _, err := schedule.Parse(s.Cron); err != nil {
		return fmt.Errorf("catalog: schedule %q: %w: %w", s.Name, ErrInvalid, err)
	}
	if s.RPO < 0 || s.RPO%time.Second != 0 {
		return fmt.Errorf("catalog: schedule %q: %w: RPO %v is not a whole, non-negative number of seconds", s.Name, ErrInvalid, s.RPO)
	}
	return nil
}

// PutSchedule adds or replaces a schedule. Replacing keeps the stored next
// run only if the cron expression is unchanged.
func (c *Catalog) PutSchedule(s Schedule) error {
	if err := c.writable(); err != nil {
		return err
	}
	if err := s.validate(); err != nil {
		return err
	}
	s.Next = s.Next.UTC()
	return update(c.res, "catalog: put schedule "+s.Name, func(tx *bbolt.Tx) error {
		recs := c.resRecords(tx)
		if old, err := getSchedule(recs, s.Name); err == nil && old.Cron == s.Cron && s.Next.IsZero() {
			s.Next = old.Next
		}
		return recs.put(bktSchedules, []byte(s.Name), s)
	})
}

// RemoveSchedule deletes a schedule; ErrNotFound if there is none.
func (c *Catalog) RemoveSchedule(name string) error {
	if err := c.writable(); err != nil {
		return err
	}
	return update(c.res, "catalog: remove schedule "+name, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bktSchedules)
		if b == nil || b.Get([]byte(name)) == nil {
			return fmt.Errorf("catalog: schedule %q: %w", name, ErrNotFound)
		}
		return b.Delete([]byte(name))
	})
}

// Schedules returns every schedule, by name.
func (c *Catalog) Schedules() ([]Schedule, error) {
	var out []Schedule
	err := view(c.res, "catalog: schedules", func(tx *bbolt.Tx) error {
		return c.resRecords(tx).each(bktSchedules, func(k []byte, decode func(any) error) error {
			s, err := decodeSchedule(k, decode)
			out = append(out, s)
			return err
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// NextRuns returns the next run of every schedule that has one
// (schedule.Store).
func (c *Catalog) NextRuns() (map[string]time.Time, error) {
	all, err := c.Schedules()
	if err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	for _, s := range all {
		if !s.Next.IsZero() {
			out[s.Name] = s.Next
		}
	}
	return out, nil
}

// SetNextRun records a schedule's next run, durably (schedule.Store);
// ErrNotFound if the schedule was removed.
func (c *Catalog) SetNextRun(name string, next time.Time) error {
	if err := c.writable(); err != nil {
		return err
	}
	return update(c.res, "catalog: set next run of schedule "+name, func(tx *bbolt.Tx) error {
		recs := c.resRecords(tx)
		s, err := getSchedule(recs, name)
		if err != nil {
			return err
		}
		s.Next = next.UTC()
		return recs.put(bktSchedules, []byte(s.Name), s)
	})
}

var _ schedule.Store = (*Catalog)(nil)

func getSchedule(recs records, name string) (Schedule, error) {
	var s Schedule
	found, err := recs.get(bktSchedules, []byte(name), &s)
	switch {
	case err != nil:
		return s, err
	case !found:
		return s, fmt.Errorf("catalog: schedule %q: %w", name, ErrNotFound)
	}
	return s, checkScheduleKey([]byte(name), s)
}

func decodeSchedule(k []byte, decode func(any) error) (Schedule, error) {
	var s Schedule
	if err := decode(&s); err != nil {
		return s, err
	}
	return s, checkScheduleKey(k, s)
}

func checkScheduleKey(k []byte, s Schedule) error {
	if string(k) != s.Name {
		return fmt.Errorf("catalog: schedule %q: %w: record names %q", k, ErrCorrupt, s.Name)
	}
	return nil
}

// loadSchedules stores imported schedules (next runs included), replacing
// those of the same names.
func loadSchedules(recs records, ss []Schedule) error {
	for _, s := range ss {
		if err := s.validate(); err != nil {
			return err
		}
		if err := recs.put(bktSchedules, []byte(s.Name), s); err != nil {
			return err
		}
	}
	return nil
}

var scheduleColumns = []string{"name", "device_group", "backup_group", "cron", "rpo_seconds", "next_run"}

// writeScheduleRows adds the schedules table's rows to an SQL export.
func writeScheduleRows(sw *sqlWriter, ss []Schedule) {
	for _, s := range ss {
		r := s.record()
		var next any // NULL: no next run yet
		if r.NextRun != "" {
			next = r.NextRun
		}
		sw.insert("schedules", scheduleColumns, r.Name, r.DeviceGroup, r.BackupGroup, r.Cron, r.RPOSeconds, next)
	}
}

// bindSchedules reads the schedules table of an SQL export.
func bindSchedules(b *rowBinder, rows []sqlRow, d *dump) {
	for _, row := range rows {
		r := scheduleRecord{Name: b.s(row, "name"), DeviceGroup: b.s(row, "device_group"), BackupGroup: b.s(row, "backup_group"),
			Cron: b.s(row, "cron"), RPOSeconds: b.n(row, "rpo_seconds"), NextRun: b.s(row, "next_run")} // NULL reads as ""
		s, err := r.schedule()
		if err != nil {
			b.fail(row, "%v", err)
		}
		d.Schedules = append(d.Schedules, s)
	}
}
