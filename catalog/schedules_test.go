package catalog

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/schedule"
)

func TestSchedulesStored(t *testing.T) {
	c, _ := mustCreate(t, Options{})
	s := Schedule{Name: "nightly", DeviceGroup: "homes", BackupGroup: "house-backups", Cron: "0 3 * * *", RPO: 26 * time.Hour}
	must(t, c.PutSchedule(s))
	next := time.Date(2026, 3, 3, 3, 0, 0, 0, time.UTC)
	must(t, c.SetNextRun("nightly", next))
	runs, err := c.NextRuns()
	if err != nil || len(runs) != 1 || !runs["nightly"].Equal(next) {
		t.Fatalf("NextRuns = %v, %v", runs, err)
	}
	t.Run("same cron keeps the next run", func(t *testing.T) {
		s.RPO = time.Hour
		must(t, c.PutSchedule(s))
		all, err := c.Schedules()
		if err != nil || len(all) != 1 || !all[0].Next.Equal(next) || all[0].RPO != time.Hour {
			t.Fatalf("Schedules = %+v, %v", all, err)
		}
	})
	t.Run("new cron resets it", func(t *testing.T) {
		s.Cron = "0 4 * * *"
		must(t, c.PutSchedule(s))
		if runs, _ := c.NextRuns(); len(runs) != 0 {
			t.Fatalf("NextRuns = %v, want none", runs)
		}
	})
	t.Run("remove", func(t *testing.T) {
		must(t, c.RemoveSchedule("nightly"))
		if err := c.RemoveSchedule("nightly"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second remove: %v", err)
		}
		if err := c.SetNextRun("nightly", next); !errors.Is(err, ErrNotFound) {
			t.Fatalf("SetNextRun of a removed schedule: %v", err)
		}
	})
}

func TestScheduleInvalid(t *testing.T) {
	c, _ := mustCreate(t, Options{})
	ok := Schedule{Name: "n", DeviceGroup: "d", BackupGroup: "b", Cron: "@daily"}
	tests := []struct {
		name   string
		mutate func(*Schedule)
	}{
		{"no name", func(s *Schedule) { s.Name = "" }},
		{"no device group", func(s *Schedule) { s.DeviceGroup = "" }},
		{"no backup group", func(s *Schedule) { s.BackupGroup = "" }},
		{"bad cron", func(s *Schedule) { s.Cron = "61 * * * *" }},
		{"negative RPO", func(s *Schedule) { s.RPO = -time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			tt.mutate(&s)
			if err := c.PutSchedule(s); !errors.Is(err, ErrInvalid) {
				t.Fatalf("PutSchedule = %v, want ErrInvalid", err)
			}
		})
	}
	t.Run("the cron error names the field", func(t *testing.T) {
		s := ok
		s.Cron = "* 25 * * *"
		var pe *schedule.ParseError
		if err := c.PutSchedule(s); !errors.As(err, &pe) || pe.Field != "hour" {
			t.Fatalf("PutSchedule = %v", err)
		}
	})
}

// TestImportBeforeKeepHourly: an SQL export made before keep_hourly and
// schedules existed still imports; its rules keep no hourly periods.
func TestImportBeforeKeepHourly(t *testing.T) {
	src := richCatalog(t)
	var buf bytes.Buffer
	must(t, src.Export(&buf, FormatSQL))
	var old []string
	for _, line := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(line, "INSERT INTO schedules ") {
			continue
		}
		if strings.HasPrefix(line, "INSERT INTO keep_rules ") {
			// drop the column and its value (the fourth of each list)
			line = strings.Replace(line, "keep_last, keep_hourly, ", "keep_last, ", 1)
			head, vals, _ := strings.Cut(line, "VALUES (")
			v := strings.Split(strings.TrimSuffix(vals, ");"), ", ")
			line = head + "VALUES (" + strings.Join(append(v[:3:3], v[4:]...), ", ") + ");"
		}
		old = append(old, line)
	}
	dst, _ := mustCreate(t, Options{})
	must(t, dst.Import(strings.NewReader(strings.Join(old, "\n")), FormatSQL))
	rules, err := dst.KeepRules()
	if err != nil || len(rules) != 2 {
		t.Fatalf("KeepRules = %v, %v", rules, err)
	}
	for _, r := range rules {
		if r.Hourly != 0 || (r.Group != "" && (r.Daily != 7 || r.Monthly != 12)) {
			t.Fatalf("imported rule %s", r)
		}
	}
	if ss, err := dst.Schedules(); err != nil || len(ss) != 0 {
		t.Fatalf("Schedules = %v, %v", ss, err)
	}
}

func TestScheduleRunRecorded(t *testing.T) {
	c, _ := mustCreate(t, Options{})
	s := Schedule{Name: "nightly", DeviceGroup: "homes", BackupGroup: "house-backups", Cron: "0 3 * * *", RPO: 26 * time.Hour}
	must(t, c.PutSchedule(s))
	run := ScheduleRun{Slot: time.Date(2026, 3, 3, 3, 0, 0, 0, time.UTC), Job: "j1", Outcome: "done", Pruned: 4}
	must(t, c.RecordScheduleRun("nightly", run))
	must(t, c.SetRPOMissed("nightly", []string{"home2", "home1"}))
	t.Run("read back", func(t *testing.T) {
		got, err := c.Schedule("nightly")
		if err != nil || got.Last != run || strings.Join(got.RPOMissed, ",") != "home1,home2" {
			t.Fatalf("Schedule = %+v, %v", got, err)
		}
	})
	t.Run("a changed schedule keeps its run state", func(t *testing.T) {
		s.Cron = "0 4 * * *"
		must(t, c.PutSchedule(s))
		got, err := c.Schedule("nightly")
		if err != nil || got.Last != run || len(got.RPOMissed) != 2 {
			t.Fatalf("Schedule = %+v, %v", got, err)
		}
	})
	for _, format := range []string{FormatSQL, FormatJSON} {
		t.Run("export "+format, func(t *testing.T) {
			var buf bytes.Buffer
			must(t, c.Export(&buf, format))
			dst, _ := mustCreate(t, Options{})
			must(t, dst.Import(&buf, format))
			got, err := dst.Schedule("nightly")
			if err != nil || got.Last != run || strings.Join(got.RPOMissed, ",") != "home1,home2" {
				t.Fatalf("imported %+v, %v", got, err)
			}
		})
	}
	t.Run("removed schedule", func(t *testing.T) {
		if err := c.RecordScheduleRun("weekly", run); !errors.Is(err, ErrNotFound) {
			t.Fatalf("RecordScheduleRun of an unknown schedule: %v", err)
		}
		if _, err := c.Schedule("weekly"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Schedule(weekly): %v", err)
		}
	})
}
