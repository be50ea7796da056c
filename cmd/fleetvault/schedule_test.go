package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/fleetvault/fleetvault/apiclient"
)

// TestScheduleCommands drives the schedule commands on an installation
// directly: bad input named, schedules stored and listed, the retention
// preview equal to catalog prune --dry-run --group, and removal.
func TestScheduleCommands(t *testing.T) {
	mbr := newTestInstallation(t)
	addPieces(t, mbr) // home1..home3 in "North Device Backup", four days each
	cli := directCLI(t, mbr)
	cli(t, exitOK, "group", "create", "homes")
	cli(t, exitOK, "group", "create", "emptied")
	t.Run("bad input", func(t *testing.T) {
		tests := []struct {
			name string
			args []string
			code int
			says string
		}{
			{"cron field", []string{"--group", "homes", "--into", "North Device Backup", "--cron", "61 * * * *"}, exitError, "minute field"},
			{"cron count", []string{"--group", "homes", "--into", "North Device Backup", "--cron", "* * *"}, exitError, `field "cron"`},
			{"unknown group", []string{"--group", "hoems", "--into", "North Device Backup", "--cron", "@daily"}, exitError, `did you mean "homes"?`},
			{"rpo", []string{"--group", "homes", "--into", "North Device Backup", "--cron", "@daily", "--rpo", "soon"}, exitError, `field "rpo"`},
			{"negative keep", []string{"--group", "homes", "--into", "North Device Backup", "--cron", "@daily", "--keep-last", "-1"}, exitUsage, "--keep-last -1"},
			{"no cron", []string{"--group", "homes", "--into", "North Device Backup"}, exitUsage, "cron"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, errOut := cli(t, tt.code, append([]string{"schedule", "add", "nightly"}, tt.args...)...)
				if !strings.Contains(errOut, tt.says) {
					t.Fatalf("error %q does not say %q", errOut, tt.says)
				}
			})
		}
		if out, _ := cli(t, exitOK, "schedule", "list", "--json"); strings.TrimSpace(out) != "[]" {
			t.Fatalf("a refused add stored something: %s", out)
		}
	})
	cli(t, exitOK, "schedule", "add", "nightly", "--group", "homes", "--into", "North Device Backup", "--cron", "0 3 * * *", "--rpo", "26h", "--keep-last", "2", "--keep-daily", "1")
	t.Run("list and show", func(t *testing.T) {
		out, _ := cli(t, exitOK, "schedule", "list", "--json")
		var scs []apiclient.Schedule
		if err := json.Unmarshal([]byte(out), &scs); err != nil || len(scs) != 1 {
			t.Fatalf("list: %v %s", err, out)
		}
		sc := scs[0]
		if sc.Name != "nightly" || sc.Cron != "0 3 * * *" || sc.RPOSeconds != 26*3600 || sc.Keep == nil || *sc.Keep != (apiclient.KeepRule{Last: 2, Daily: 1}) || sc.LastRun != nil {
			t.Fatalf("schedule %+v", sc)
		}
		out, _ = cli(t, exitOK, "schedule", "show", "nightly")
		for _, want := range []string{"keep", "last 2, daily 1", "rpo", "26h0m0s", "last run", "never"} {
			if !strings.Contains(out, want) {
				t.Fatalf("show does not say %q:\n%s", want, out)
			}
		}
		_, errOut := cli(t, exitError, "schedule", "show", "nigthly")
		if !strings.Contains(errOut, `did you mean "nightly"?`) {
			t.Fatalf("unknown schedule: %s", errOut)
		}
	})
	t.Run("prune preview is catalog prune --dry-run --group", func(t *testing.T) {
		out, _ := cli(t, exitOK, "schedule", "show", "nightly", "--prune-preview", "--json")
		var pp apiclient.PrunePreview
		if err := json.Unmarshal([]byte(out), &pp); err != nil {
			t.Fatal(err)
		}
		var previewed []string
		for _, p := range pp.Remove {
			previewed = append(previewed, p.ID)
		}
		code, dry, errOut := fvRun(t, "catalog", "prune", "--dry-run", "--group", "North Device Backup", "--mbr", mbr)
		if code != exitOK {
			t.Fatalf("catalog prune: %d %s", code, errOut)
		}
		var listed []string
		for _, line := range strings.Split(dry, "\n") {
			if f := strings.Fields(line); len(f) > 3 && strings.HasPrefix(line, "would remove ") && !strings.Contains(line, "piece(s),") {
				listed = append(listed, f[2])
			}
		}
		slices.Sort(previewed)
		slices.Sort(listed)
		if len(previewed) != 6 || !slices.Equal(previewed, listed) { // of 4 days each, keep the 2 newest
			t.Fatalf("preview removes %v, catalog prune --dry-run %v", previewed, listed)
		}
	})
	t.Run("rpo and run-now", func(t *testing.T) {
		out, _ := cli(t, exitOK, "rpo", "--json")
		if strings.TrimSpace(out) != "[]" { // homes has no devices
			t.Fatalf("rpo: %s", out)
		}
		_, errOut := cli(t, exitError, "schedule", "run-now", "nightly")
		if !strings.Contains(errOut, "runs in the server") {
			t.Fatalf("run-now without a server: %s", errOut)
		}
	})
	t.Run("remove", func(t *testing.T) {
		cli(t, exitOK, "schedule", "remove", "nightly")
		_, errOut := cli(t, exitError, "schedule", "remove", "nightly")
		if !strings.Contains(errOut, `no schedule "nightly"`) {
			t.Fatalf("second remove: %s", errOut)
		}
	})
}
