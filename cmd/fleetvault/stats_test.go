package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/dispatch"
	"github.com/fleetvault/fleetvault/grouprestore"
)

// dayCount is the test's own count of one day (or of the total).
type dayCount struct {
	backups, backupOK, restores, restoreOK int
	bytes, restoreMS, restoreMaxMS         int64
}

// syntheticYear writes a year of random job outcomes for devices through
// dispatch.JobHistory and catalog.RecordHistory (what the server does when a
// job ends) and returns its own count per owner and day.
func syntheticYear(t *testing.T, mbr string, owners map[string]string, start time.Time) map[string]map[string]*dayCount {
	t.Helper()
	c, err := catalog.Open(mbr, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var devs []catalog.Device
	for id, owner := range owners {
		devs = append(devs, catalog.Device{ID: id, Owner: owner, Identifier: "mqtt://" + id})
	}
	if err := c.PutDevices(context.Background(), devs); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(12, 2026))
	sizes := map[string]int64{}
	size := func(piece string) int64 { return sizes[piece] }
	counts := map[string]map[string]*dayCount{} // owner ("" all) -> day ("total") -> count
	add := func(owner, day string, f func(*dayCount)) {
		who := []string{""}
		if owner != "" {
			who = append(who, owner)
		}
		for _, o := range who {
			for _, d := range []string{day, "total"} {
				if counts[o] == nil {
					counts[o] = map[string]*dayCount{}
				}
				if counts[o][d] == nil {
					counts[o][d] = &dayCount{}
				}
				f(counts[o][d])
			}
		}
	}
	var batch []catalog.HistoryRecord
	for day := range 365 {
		jobStart := start.AddDate(0, 0, day).Add(3 * time.Hour)
		dayName := jobStart.Format(catalog.DayLayout)
		var backups, restores []grouprestore.DeviceOutcome
		for id, owner := range owners {
			at := jobStart.Add(time.Duration(rng.IntN(3600_000)) * time.Millisecond)
			b := grouprestore.DeviceOutcome{Device: id, Time: at.UnixMilli()}
			switch r := rng.IntN(10); {
			case r < 7:
				b.State, b.Piece = grouprestore.BackedUp, fmt.Sprintf("p-%s-%d", id, day)
				sizes[b.Piece] = int64(100 + rng.IntN(5000))
				add(owner, dayName, func(c *dayCount) { c.backups++; c.backupOK++; c.bytes += sizes[b.Piece] })
			case r < 8:
				b.State = grouprestore.Offline
				add(owner, dayName, func(c *dayCount) { c.backups++ })
			case r < 9:
				b.State = grouprestore.Failed
				add(owner, dayName, func(c *dayCount) { c.backups++ })
			default:
				b.State = grouprestore.Skipped // not attempted: not counted
			}
			backups = append(backups, b)
			if rng.IntN(7) == 0 {
				ms := int64(rng.IntN(90_000))
				r := grouprestore.DeviceOutcome{Device: id, Time: jobStart.UnixMilli() + ms, State: grouprestore.Restored}
				ok := rng.IntN(4) != 0
				if !ok {
					r.State = grouprestore.Rejected
				}
				add(owner, dayName, func(c *dayCount) {
					c.restores++
					c.restoreMS += ms
					c.restoreMaxMS = max(c.restoreMaxMS, ms)
					if ok {
						c.restoreOK++
					}
				})
				restores = append(restores, r)
			}
		}
		batch = append(batch, dispatch.JobHistory(grouprestore.KindBackup, jobStart, backups, size)...)
		batch = append(batch, dispatch.JobHistory(grouprestore.KindRestore, jobStart, restores, size)...)
		if day%30 == 29 || day == 364 {
			if err := c.RecordHistory(batch); err != nil {
				t.Fatal(err)
			}
			batch = nil
		}
	}
	return counts
}

// checkRow compares a row of fleetvault stats with the test's count.
func checkRow(t *testing.T, r apiclient.StatsRow, want *dayCount) {
	t.Helper()
	if want == nil {
		want = &dayCount{}
	}
	rate := 0.0
	if n := want.backups + want.restores; n > 0 {
		rate = float64(want.backupOK+want.restoreOK) / float64(n)
	}
	ok := r.BackupAttempts == want.backups && r.BackupSuccesses == want.backupOK && r.BackupFailures == want.backups-want.backupOK &&
		r.BytesBackedUp == want.bytes && r.RestoreAttempts == want.restores && r.RestoreSuccesses == want.restoreOK &&
		r.RestoreFailures == want.restores-want.restoreOK && r.RestoreSecondsTotal == float64(want.restoreMS)/1000 &&
		r.RestoreSecondsMax == float64(want.restoreMaxMS)/1000 && r.SuccessRate == rate
	if !ok {
		t.Fatalf("day %s: got %+v, want %+v (rate %v)", r.Day, r, *want, rate)
	}
}

// TestStatsOverASyntheticYear: fleetvault stats --json and --csv over a
// year of random outcomes match the test's own count, per day and in total,
// for everyone and per owner, and within a window.
func TestStatsOverASyntheticYear(t *testing.T) {
	mbr := newTestInstallation(t)
	owners := map[string]string{}
	for i := range 12 {
		owners[fmt.Sprintf("home%02d", i)] = []string{"alice", "bob", ""}[i%3]
	}
	start := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	want := syntheticYear(t, mbr, owners, start)
	direct := []string{"--server", deadServerURL(t), "--mbr", mbr}

	tests := []struct {
		name, owner  string
		since, until string
	}{
		{"everyone", "", "", ""},
		{"alice", "alice", "", ""},
		{"bob, one month", "bob", "2026-03-01", "2026-03-31"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"stats", "--json"}
			if tt.owner != "" {
				args = append(args, "--owner", tt.owner)
			}
			if tt.since != "" {
				args = append(args, "--since", tt.since, "--until", tt.until)
			}
			code, out, errOut := fvRun(t, append(args, direct...)...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var st apiclient.Stats
			if err := json.Unmarshal([]byte(out), &st); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			counts := want[tt.owner]
			wantDays := 365
			total := counts["total"]
			if tt.since != "" {
				wantDays, total = 31, &dayCount{}
				for _, r := range st.Days {
					c := counts[r.Day]
					total.backups, total.backupOK, total.bytes = total.backups+c.backups, total.backupOK+c.backupOK, total.bytes+c.bytes
					total.restores, total.restoreOK, total.restoreMS = total.restores+c.restores, total.restoreOK+c.restoreOK, total.restoreMS+c.restoreMS
					total.restoreMaxMS = max(total.restoreMaxMS, c.restoreMaxMS)
				}
			}
			if len(st.Days) != wantDays || st.RetentionDays != catalog.DefaultHistoryRetention {
				t.Fatalf("%d days, retention %d", len(st.Days), st.RetentionDays)
			}
			for _, r := range st.Days {
				checkRow(t, r, counts[r.Day])
			}
			checkRow(t, st.Total, total)

			code, out, errOut = fvRun(t, append(append([]string{"stats", "--csv"}, args[2:]...), direct...)...)
			if code != exitOK {
				t.Fatalf("--csv: exit %d: %s", code, errOut)
			}
			rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != wantDays+2 || rows[0][0] != "day" || rows[len(rows)-1][0] != "total" {
				t.Fatalf("%d CSV rows; first %v, last %v", len(rows), rows[0], rows[len(rows)-1])
			}
			for _, row := range rows[1:] {
				r := csvRow(t, rows[0], row)
				if r.Day == "total" {
					checkRow(t, r, total)
				} else {
					checkRow(t, r, counts[r.Day])
				}
			}
		})
	}
}

// csvRow reads one CSV line by its header's column names.
func csvRow(t *testing.T, header, row []string) apiclient.StatsRow {
	t.Helper()
	col := map[string]string{}
	for i, h := range header {
		col[h] = row[i]
	}
	atoi := func(k string) int {
		n, err := strconv.Atoi(col[k])
		if err != nil {
			t.Fatalf("column %s: %v", k, err)
		}
		return n
	}
	float := func(k string) float64 {
		f, err := strconv.ParseFloat(col[k], 64)
		if err != nil {
			t.Fatalf("column %s: %v", k, err)
		}
		return f
	}
	return apiclient.StatsRow{Day: col["day"], BackupAttempts: atoi("backup_attempts"), BackupSuccesses: atoi("backup_successes"),
		BackupFailures: atoi("backup_failures"), BytesBackedUp: int64(atoi("bytes_backed_up")), RestoreAttempts: atoi("restore_attempts"),
		RestoreSuccesses: atoi("restore_successes"), RestoreFailures: atoi("restore_failures"), RestoreSecondsTotal: float("restore_seconds_total"),
		RestoreSecondsMax: float("restore_seconds_max"), RPOMisses: atoi("rpo_misses"), SuccessRate: float("success_rate")}
}
