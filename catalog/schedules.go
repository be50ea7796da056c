package catalog

import (
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
type Schedule struct {
	Name        string        `json:"name"`
	DeviceGroup string        `json:"device_group"`
	BackupGroup string        `json:"backup_group"`
	Cron        string        `json:"cron"`
	RPO         time.Duration `json:"rpo,omitempty"`
	Next        time.Time     `json:"next,omitzero"`
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
	if s.RPO < 0 {
		return fmt.Errorf("catalog: schedule %q: %w: negative RPO %v", s.Name, ErrInvalid, s.RPO)
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
		b, err := tx.CreateBucketIfNotExists(bktSchedules)
		if err != nil {
			return err
		}
		if old, err := getSchedule(b, s.Name); err == nil && old.Cron == s.Cron && s.Next.IsZero() {
			s.Next = old.Next
		}
		return putSchedule(b, s)
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
		b := tx.Bucket(bktSchedules)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			s, err := decodeSchedule(k, v)
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
		b := tx.Bucket(bktSchedules)
		if b == nil {
			return fmt.Errorf("catalog: schedule %q: %w", name, ErrNotFound)
		}
		s, err := getSchedule(b, name)
		if err != nil {
			return err
		}
		s.Next = next.UTC()
		return putSchedule(b, s)
	})
}

var _ schedule.Store = (*Catalog)(nil)

func getSchedule(b *bbolt.Bucket, name string) (Schedule, error) {
	v := b.Get([]byte(name))
	if v == nil {
		return Schedule{}, fmt.Errorf("catalog: schedule %q: %w", name, ErrNotFound)
	}
	return decodeSchedule([]byte(name), v)
}

func putSchedule(b *bbolt.Bucket, s Schedule) error {
	v, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return b.Put([]byte(s.Name), v)
}

func decodeSchedule(k, v []byte) (Schedule, error) {
	var s Schedule
	if err := json.Unmarshal(v, &s); err != nil {
		return s, fmt.Errorf("catalog: schedule %q: %w: %v", k, ErrCorrupt, err)
	}
	if string(k) != s.Name {
		return s, fmt.Errorf("catalog: schedule %q: %w: record names %q", k, ErrCorrupt, s.Name)
	}
	return s, nil
}
