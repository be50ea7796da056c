package main

import (
	"github.com/fleetvault/fleetvault/apiclient"

	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/tagmatch"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it under -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestRenderGolden(t *testing.T) {
	when := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tag, _ := tagmatch.ParseKV("manufacturer=Acme Corp.; model=xyz; zone=South")
	many := []grouprestore.DeviceOutcome{devOutcome("home1-lock", grouprestore.Restored, "")}
	for i := range 12 {
		many = append(many, devOutcome("home"+string(rune('a'+i))+"-panel", grouprestore.NoMatch, "no backed-up tag has model=q9"))
	}
	many = append(many, devOutcome("home9-thermostat", grouprestore.Ambiguous, "North and South match equally well"))
	tests := []struct {
		name   string
		render func(*bytes.Buffer) error
	}{
		{"job-report.golden", func(b *bytes.Buffer) error {
			j := finalJob(grouprestore.JobDone, grouprestore.KindRestore, many...)
			j.ID, j.Source, j.Target = "r-1", "Backup Group for Reference IoT from model House", "Backup Group of Devices"
			writeJobReport(b, j)
			return nil
		}},
		{"job-report-paused.golden", func(b *bytes.Buffer) error {
			j := finalJob(grouprestore.JobPaused, grouprestore.KindBackup, devOutcome("home1-lock", grouprestore.BackedUp, ""),
				devOutcome("home2-panel", grouprestore.TagMismatch, `the device's tag contradicts its registration: registered with manufacturer "Thermo Ltd.", but the device says "Acme Corp."; nothing stored or written`))
			j.ID, j.Source, j.Target = "b-2", "homes", "homes backup"
			j.Error = "storage: store the backup of home3-lock failed: write /var/lib/fleetvault/catalog.db: no space left on device; the job is paused since 2026-03-01T12:00:00Z and retries by itself (next in 4s): free space or repair the disk"
			writeJobReport(b, j)
			return nil
		}},
		{"jobs-list.golden", func(b *bytes.Buffer) error {
			return renderJobs(b, []apiclient.Job{
				{ID: "r-2", Kind: grouprestore.KindRestore, State: grouprestore.JobRunning, Total: 4000, Source: "models", Target: "homes", Created: &when,
					Continuous: true, Progress: &grouprestore.Progress{Counts: map[grouprestore.State]int{grouprestore.Restored: 3990, grouprestore.Offline: 10}}},
				{ID: "b-1", Kind: grouprestore.KindBackup, State: grouprestore.JobDone, Total: 6, Source: "Model House", Target: "models", Created: &when},
			})
		}},
		{"devices.golden", func(b *bytes.Buffer) error {
			return renderDevices(b, []apiclient.Device{
				{ID: "home1-thermostat", Identifier: "mqtt://home1-thermostat", Tag: tag, Optional: map[string]string{"type": "thermostat"}},
				{ID: "lab-lock", Identifier: "coap://10.10.11.44:5683"},
			})
		}},
		{"groups.golden", func(b *bytes.Buffer) error {
			g1, g2 := apiclient.Group{MemberCount: 2000}, apiclient.Group{MemberCount: 6}
			g1.Name, g1.Kind, g1.Description = "Backup Group of Devices", "devices", "new homes"
			g2.Name, g2.Kind, g2.Owner = "Backup Group for Reference IoT from model House", "backup", "builder"
			return renderGroups(b, []apiclient.Group{g1, g2})
		}},
		{"backups.golden", func(b *bytes.Buffer) error {
			return renderBackups(b, []apiclient.Backup{{ID: "p-1", Client: "ref-south-thermostat", Group: "models", Time: when, Size: 212, Tag: tag}})
		}},
		{"backup-show.golden", func(b *bytes.Buffer) error {
			return renderBackup(b, apiclient.Backup{ID: "p-1", Client: "ref-south-thermostat", Name: "settings", Type: "settings", Group: "models",
				Location: "mqtt://ref-south-thermostat", Time: when, Size: 212, Tag: tag, Hash: "ab12",
				Settings: map[string]any{"setpoint": 21.5, "mode": "heat"}})
		}},
		{"diff.golden", func(b *bytes.Buffer) error {
			return renderDiff(b, apiclient.Diff{A: "p-1", B: "p-2",
				Added: []apiclient.Change{{Path: "/eco", To: true}}, Removed: []apiclient.Change{{Path: "/away", From: 16.0}},
				Changed: []apiclient.Change{{Path: "/setpoint", From: 21.5, To: 23.0}}})
		}},
		{"added.golden", func(b *bytes.Buffer) error {
			return renderAdded(b, apiclient.AddDevicesResult{GroupsCreated: []string{"homes"},
				Devices: []apiclient.AddedDevice{{ID: "h1", Password: "s3cretGeneratedOnce", Group: "homes"}, {ID: "h2", Group: "homes"}}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.render(&b); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tt.name, b.String())
		})
	}
}

func TestJobExit(t *testing.T) {
	tests := []struct {
		name string
		job  apiclient.Job
		want int // -1: nil
	}{
		{"running", apiclient.Job{State: grouprestore.JobRunning, Total: 3}, -1},
		{"all restored", finalJob(grouprestore.JobDone, grouprestore.KindRestore, devOutcome("a", grouprestore.Restored, "")), -1},
		{"all backed up", finalJob(grouprestore.JobDone, grouprestore.KindBackup, devOutcome("a", grouprestore.BackedUp, "")), -1},
		{"backup counts restored wrongly", finalJob(grouprestore.JobDone, grouprestore.KindBackup, devOutcome("a", grouprestore.Restored, "")), exitIncomplete},
		{"one offline", finalJob(grouprestore.JobDone, grouprestore.KindRestore, devOutcome("a", grouprestore.Restored, ""), devOutcome("b", grouprestore.Offline, "")), exitIncomplete},
		{"cancelled", finalJob(grouprestore.JobCancelled, grouprestore.KindRestore, devOutcome("a", grouprestore.Skipped, "")), exitIncomplete},
		{"failed", finalJob(grouprestore.JobFailed, grouprestore.KindRestore, devOutcome("a", grouprestore.Restored, "")), exitError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := jobExit(tt.job)
			var ec exitCodeError
			switch {
			case tt.want < 0 && err != nil:
				t.Errorf("jobExit = %v, want nil", err)
			case tt.want >= 0 && (!errors.As(err, &ec) || ec.code != tt.want):
				t.Errorf("jobExit = %v, want exit %d", err, tt.want)
			}
		})
	}
}

func TestParseShare(t *testing.T) {
	tests := []struct {
		in      string
		want    float64
		wantErr bool
	}{
		{"", 0, false}, {"0.1", 0.1, false}, {"10%", 0.1, false}, {" 50 % ", 0.5, false}, {"1", 1, false}, {"100%", 1, false},
		{"0", 0, false}, {"ten", 0, true}, {"-0.1", 0, true}, {"1.5", 0, true}, {"150%", 0, true}, {"%", 0, true}, {"NaN", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseShare(tt.in)
			if (err != nil) != tt.wantErr || (!tt.wantErr && absDiff(got-tt.want) > 1e-12) {
				t.Errorf("parseShare(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func absDiff(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func FuzzParseShare(f *testing.F) {
	for _, s := range []string{"", "0.1", "10%", "1e-3", "100 %", "NaN", "+Inf"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseShare(s)
		if err == nil && !(v >= 0 && v <= 1) {
			t.Fatalf("parseShare(%q) = %v: outside 0..1 without an error", s, v)
		}
	})
}

func TestCommandHelp(t *testing.T) {
	for _, args := range [][]string{
		{"device", "add"}, {"device", "import"}, {"device", "list"},
		{"group", "create"}, {"group", "add"}, {"group", "list"},
		{"backup"}, {"restore"}, {"undo"},
		{"jobs", "list"}, {"jobs", "show"}, {"jobs", "watch"}, {"jobs", "cancel"}, {"jobs", "pause"}, {"jobs", "resume"},
		{"backups", "list"}, {"backups", "show"}, {"backups", "diff"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errOut := fvRun(t, append(args, "--help")...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			for _, want := range []string{"Examples:", "Exit status: 0", "--server", "--token"} {
				if !strings.Contains(out, want) {
					t.Errorf("help lacks %q:\n%s", want, out)
				}
			}
		})
	}
}
