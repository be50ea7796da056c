package dispatch

import (
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/notify"
)

// A job's end makes one event, and a scheduled job's names its schedule
// (the scheduler itself tells nobody, so this is the only message).
func TestJobEvent(t *testing.T) {
	now := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		spec     grouprestore.Spec
		state    grouprestore.JobState
		kind     notify.Kind
		outcome  string
		schedule string
	}{
		{"scheduled backup failed", grouprestore.Spec{Kind: grouprestore.KindBackup, Source: "homes", Target: "nightly", Schedule: "every-night"},
			grouprestore.JobFailed, notify.JobFailed, "failed", "every-night"},
		{"scheduled backup aborted", grouprestore.Spec{Kind: grouprestore.KindBackup, Source: "homes", Target: "nightly", Schedule: "every-night"},
			grouprestore.JobAborted, notify.JobFailed, "aborted", "every-night"},
		{"a person's backup done", grouprestore.Spec{Kind: grouprestore.KindBackup, Source: "homes", Target: "nightly"},
			grouprestore.JobDone, notify.JobCompleted, string(grouprestore.JobDone), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, failed := jobEvent(tc.spec, grouprestore.Progress{Job: "j1", State: tc.state, Reason: "storage full"}, nil, now)
			if e.Kind != tc.kind || e.Outcome != tc.outcome || e.Schedule != tc.schedule || e.Group != "nightly" {
				t.Errorf("event %+v, want kind %s, outcome %s, schedule %q, group nightly", e, tc.kind, tc.outcome, tc.schedule)
			}
			if failed != (tc.kind == notify.JobFailed) {
				t.Errorf("failed = %v for kind %s", failed, tc.kind)
			}
			if err := e.Validate(); err != nil {
				t.Errorf("the event does not validate: %v", err)
			}
		})
	}
}
