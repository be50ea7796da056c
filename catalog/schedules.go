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
// Last is the schedule's latest run (RecordScheduleRun) and RPOMissed the
// devices already told that they missed the RPO (SetRPOMissed): state of
// the scheduler that PutSchedule keeps when it replaces a schedule.
//
// Its JSON form (the resource database record and the JSON export) uses the
// columns of the standard's schedules table: name, device_group,
// backup_group, cron, rpo_seconds, next_run ("" or a timestamp), last_run
// ("" or a timestamp), last_job, last_outcome, last_pruned and rpo_missed
// (a list of device ids).
type Schedule struct {
	Name        string
	DeviceGroup string
	BackupGroup string
	Cron        string
	RPO         time.Duration // whole seconds
	Next        time.Time
	Last        ScheduleRun
	RPOMissed   []string // sorted device ids
}

// ScheduleRun is what one run of a schedule did: the slot it ran for, the
// backup job it started, how that ended (the job's state, or "error" when
// none could start) and how many pieces retention then removed. Its zero
// value means the schedule never ran.
type ScheduleRun struct {
	Slot    time.Time
	Job     string
	Outcome string
	Pruned  int
}

// scheduleRecord is Schedule in the standard's columns.
type scheduleRecord struct {
	Name        string   `json:"name"`
	DeviceGroup string   `json:"device_group"`
	BackupGroup string   `json:"backup_group"`
	Cron        string   `json:"cron"`
	RPOSeconds  int64    `json:"rpo_seconds"`
	NextRun     string   `json:"next_run"`
	LastRun     string   `json:"last_run,omitempty"`
	LastJob     string   `json:"last_job,omitempty"`
	LastOutcome string   `json:"last_outcome,omitempty"`
	LastPruned  int64    `json:"last_pruned,omitempty"`
	RPOMissed   []string `json:"rpo_missed,omitempty"`
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
	if !s.Last.Slot.IsZero() {
		r.LastRun = s.Last.Slot.UTC().Format(timeLayout)
	}
	r.LastJob, r.LastOutcome, r.LastPruned, r.RPOMissed = s.Last.Job, s.Last.Outcome, int64(s.Last.Pruned), s.RPOMissed
	return r
}

func (r scheduleRecord) schedule() (Schedule, error) {
	s := Schedule{Name: r.Name, DeviceGroup: r.DeviceGroup, BackupGroup: r.BackupGroup, Cron: r.Cron, RPO: time.Duration(r.RPOSeconds) * time.Second,
		Last: ScheduleRun{Job: r.LastJob, Outcome: r.LastOutcome, Pruned: int(r.LastPruned)}, RPOMissed: r.RPOMissed}
	var err error
	if r.NextRun != "" {
		if s.Next, err = parseTime("schedule "+r.Name+" next_run", r.NextRun); err != nil {
			return s, err
		}
	}
	if r.LastRun != "" {
		s.Last.Slot, err = parseTime("schedule "+r.Name+" last_run", r.LastRun)
	}
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
	if s.Last.Pruned < 0 {
		return fmt.Errorf("catalog: schedule %q: %w: last_pruned %d is negative", s.Name, ErrInvalid, s.Last.Pruned)
	}
	return nil
}

// PutSchedule adds or replaces a schedule. Replacing keeps the stored next
// run only if the cron expression is unchanged, and keeps the last run and
// the devices told of an RPO miss (s.Last and s.RPOMissed are ignored: they
// are the scheduler's, see RecordScheduleRun and SetRPOMissed).
func (c *Catalog) PutSchedule(s Schedule) error {
	if err := c.writable(); err != nil {
		return err
	}
	if err := s.validate(); err != nil {
		return err
	}
	s.Next = s.Next.UTC()
	s.Last, s.RPOMissed = ScheduleRun{}, nil
	return update(c.res, "catalog: put schedule "+s.Name, func(tx *bbolt.Tx) error {
		recs := c.resRecords(tx)
		if old, err := getSchedule(recs, s.Name); err == nil {
			if old.Cron == s.Cron && s.Next.IsZero() {
				s.Next = old.Next
			}
			s.Last, s.RPOMissed = old.Last, old.RPOMissed
		}
		return recs.put(bktSchedules, []byte(s.Name), s)
	})
}

// Schedule returns one schedule, or ErrNotFound.
func (c *Catalog) Schedule(name string) (Schedule, error) {
	var s Schedule
	err := view(c.res, "catalog: schedule "+name, func(tx *bbolt.Tx) error {
		var err error
		s, err = getSchedule(c.resRecords(tx), name)
		return err
	})
	return s, err
}

// RecordScheduleRun stores what a run of schedule name did, durably;
// ErrNotFound if the schedule was removed meanwhile.
func (c *Catalog) RecordScheduleRun(name string, run ScheduleRun) error {
	if run.Pruned < 0 {
		return fmt.Errorf("catalog: schedule %q: %w: pruned count %d is negative", name, ErrInvalid, run.Pruned)
	}
	run.Slot = run.Slot.UTC()
	return c.changeSchedule("record a run of schedule "+name, name, func(s *Schedule) { s.Last = run })
}

// SetRPOMissed stores the devices of schedule name already told that they
// missed its RPO, so each miss is told once, across restarts.
func (c *Catalog) SetRPOMissed(name string, devices []string) error {
	sorted := append([]string(nil), devices...)
	sort.Strings(sorted)
	if len(sorted) == 0 {
		sorted = nil
	}
	return c.changeSchedule("set the RPO misses of schedule "+name, name, func(s *Schedule) { s.RPOMissed = sorted })
}

// changeSchedule applies change to the stored schedule name in one
// transaction.
func (c *Catalog) changeSchedule(what, name string, change func(*Schedule)) error {
	if err := c.writable(); err != nil {
		return err
	}
	return update(c.res, "catalog: "+what, func(tx *bbolt.Tx) error {
		recs := c.resRecords(tx)
		s, err := getSchedule(recs, name)
		if err != nil {
			return err
		}
		change(&s)
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
	return c.changeSchedule("set next run of schedule "+name, name, func(s *Schedule) { s.Next = next.UTC() })
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

var scheduleColumns = []string{"name", "device_group", "backup_group", "cron", "rpo_seconds", "next_run",
	"last_run", "last_job", "last_outcome", "last_pruned", "rpo_missed"}

// writeScheduleRows adds the schedules table's rows to an SQL export.
func writeScheduleRows(sw *sqlWriter, ss []Schedule) {
	for _, s := range ss {
		r := s.record()
		var next, last any // NULL: no next run yet, never run
		if r.NextRun != "" {
			next = r.NextRun
		}
		if r.LastRun != "" {
			last = r.LastRun
		}
		missed, _ := json.Marshal(r.RPOMissed) // a []string always marshals
		if r.RPOMissed == nil {
			missed = []byte("[]")
		}
		sw.insert("schedules", scheduleColumns, r.Name, r.DeviceGroup, r.BackupGroup, r.Cron, r.RPOSeconds, next,
			last, r.LastJob, r.LastOutcome, r.LastPruned, string(missed))
	}
}

// bindSchedules reads the schedules table of an SQL export.
func bindSchedules(b *rowBinder, rows []sqlRow, d *dump) {
	for _, row := range rows {
		r := scheduleRecord{Name: b.s(row, "name"), DeviceGroup: b.s(row, "device_group"), BackupGroup: b.s(row, "backup_group"),
			Cron: b.s(row, "cron"), RPOSeconds: b.n(row, "rpo_seconds"), NextRun: b.s(row, "next_run")} // NULL reads as ""
		if _, ok := row.vals["last_run"]; ok { // exports before the scheduler's columns lack them
			r.LastRun, r.LastJob, r.LastOutcome, r.LastPruned = b.s(row, "last_run"), b.s(row, "last_job"), b.s(row, "last_outcome"), b.n(row, "last_pruned")
			if m := b.s(row, "rpo_missed"); m != "" {
				if err := json.Unmarshal([]byte(m), &r.RPOMissed); err != nil {
					b.fail(row, "schedule %q: rpo_missed is not a JSON list of device ids: %v", r.Name, err)
				}
				if len(r.RPOMissed) == 0 {
					r.RPOMissed = nil
				}
			}
		}
		s, err := r.schedule()
		if err != nil {
			b.fail(row, "%v", err)
		}
		d.Schedules = append(d.Schedules, s)
	}
}
