package notify

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var when = time.Date(2026, 3, 2, 3, 17, 0, 0, time.UTC)

// sampleEvents is one event of each kind and variant, by golden file name.
func sampleEvents() map[string]Event {
	return map[string]Event{
		"job-failed": {ID: "e1", Kind: JobFailed, Time: when, Job: "job-0042", Outcome: "failed", Failed: 3, Total: 120,
			Schedule: "nightly", Group: "North Device Backup", Detail: "3 devices did not answer within 30s."},
		"job-aborted": {ID: "e2", Kind: JobFailed, Time: when, Job: "job-0043", Outcome: "aborted", Detail: "stopped by admin"},
		"rpo-missed": {ID: "e3", Kind: RPOMissed, Time: when, Device: "home0007-climate", RPO: 26 * time.Hour,
			LastSuccess: when.Add(-50*time.Hour - 5*time.Minute), Schedule: "nightly", Group: "North Device Backup"},
		"rpo-missed-never": {ID: "e4", Kind: RPOMissed, Time: when, Device: "home0008-lock", RPO: 15 * time.Minute},
		"certification-reminder": {ID: "e5", Kind: CertificationReminder, Time: when, Backup: "p-00ab12", Device: "home0001-climate",
			BackupTime: when.Add(-72 * time.Hour), Owner: "facilities", Since: when.Add(-72 * time.Hour)},
		"not-certified": {ID: "e6", Kind: NotCertified, Time: when, Backup: "p-00ab13", Device: "home0002-lighting",
			BackupTime: when.Add(-24 * time.Hour), By: "alice", Note: "the twin came up with the wrong scenes"},
		"certification-lapsed": {ID: "e7", Kind: CertificationLapsed, Time: when, Backup: "p-00ab14", Device: "home0003-lock",
			BackupTime: when.AddDate(0, -4, 0), Since: when.AddDate(0, -3, 0), By: "bob"},
		"job-completed": {ID: "e8", Kind: JobCompleted, Time: when, Job: "job-0044", Outcome: "done", Total: 120,
			Schedule: "nightly", Group: "North Device Backup"},
		"digest": {ID: "e9", Kind: Digest, Time: when, Owner: "alice", Events: []Event{
			{ID: "e1", Kind: JobFailed, Time: when.Add(-5 * time.Hour), Job: "job-0042", Outcome: "failed", Failed: 3, Total: 120, Group: "North Device Backup"},
			{ID: "e3", Kind: RPOMissed, Time: when.Add(-time.Hour), Device: "home0007-climate", RPO: 26 * time.Hour},
		}},
		"test": {ID: "e10", Kind: Test, Time: when, Owner: "alice"},
	}
}

func TestRenderGolden(t *testing.T) {
	r, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	for name, e := range sampleEvents() {
		t.Run(name, func(t *testing.T) {
			m, err := r.Render(e)
			if err != nil {
				t.Fatal(err)
			}
			got := "Subject: " + m.Subject + "\n\n" + m.Body
			p := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(p)
			if err != nil {
				t.Fatalf("%v (run go test ./notify -run TestRenderGolden -args -update)", err)
			}
			if got != string(want) {
				t.Fatalf("rendered %s differs from %s:\n%s", name, p, got)
			}
		})
	}
}

func TestRenderInvalid(t *testing.T) {
	r, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		e    Event
	}{
		{"unknown kind", Event{Kind: "party", Time: when}},
		{"no time", Event{Kind: JobFailed, Job: "j", Outcome: "failed"}},
		{"job without id", Event{Kind: JobFailed, Time: when, Outcome: "failed"}},
		{"job with odd outcome", Event{Kind: JobFailed, Time: when, Job: "j", Outcome: "exploded"}},
		{"rpo without device", Event{Kind: RPOMissed, Time: when, RPO: time.Hour}},
		{"rpo without objective", Event{Kind: RPOMissed, Time: when, Device: "d"}},
		{"reminder without backup", Event{Kind: CertificationReminder, Time: when, Device: "d"}},
		{"lapsed without device", Event{Kind: CertificationLapsed, Time: when, Backup: "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := r.Render(tt.e); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Render = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestSubjectIsOneLine(t *testing.T) {
	r, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Render(Event{Kind: RPOMissed, Time: when, Device: "evil\r\nBcc: victim@example.com", RPO: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if want := "[Fleetvault] RPO missed: evil Bcc: victim@example.com"; m.Subject != want {
		t.Fatalf("subject %q, want %q", m.Subject, want)
	}
}

func TestHumanDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{30 * time.Second, "30 seconds"},
		{time.Minute, "1 minute"},
		{26 * time.Hour, "1 day 2 hours"},
		{50*time.Hour + 5*time.Minute, "2 days 2 hours"},
		{24 * time.Hour, "1 day"},
		{90 * time.Minute, "1 hour 30 minutes"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := humanDuration(tt.d); got != tt.want {
				t.Fatalf("humanDuration(%v) = %q", tt.d, got)
			}
		})
	}
}
