package notify

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Kind is what happened.
type Kind string

// The events Fleetvault tells people about.
const (
	// JobFailed: a backup or restore job failed or was aborted
	// (Event.Outcome says which).
	JobFailed Kind = "job-failed"
	// RPOMissed: a device's last successful backup is older than its
	// recovery point objective.
	RPOMissed Kind = "rpo-missed"
	// CertificationReminder: a backup's certification is still unknown.
	CertificationReminder Kind = "certification-reminder"
	// NotCertified: a data owner decided a backup is not certified.
	NotCertified Kind = "not-certified"
	// CertificationLapsed: a certified backup of critical data went back
	// to unknown after its policy's period.
	CertificationLapsed Kind = "certification-lapsed"
	// JobCompleted: a backup or restore job ended without a failure
	// (Event.Outcome is the job's final state), for people who want to be
	// told always.
	JobCompleted Kind = "job-completed"
	// Digest: a day's events for one person (Event.Events), in one message.
	Digest Kind = "digest"
	// Test: a person testing that their channels work.
	Test Kind = "test"
)

// Kinds lists every Kind, in a fixed order.
func Kinds() []Kind {
	return []Kind{JobFailed, RPOMissed, CertificationReminder, NotCertified, CertificationLapsed, JobCompleted, Digest, Test}
}

// ErrInvalid marks an event, address or option that cannot be used.
var ErrInvalid = errors.New("invalid")

// Event is one thing to tell people. Which fields matter depends on Kind;
// Validate says which are required. Its JSON form is the webhook body
// (with the rendered subject and text added).
type Event struct {
	ID   string    `json:"id"` // unique; Notifier.Notify assigns one if empty
	Kind Kind      `json:"kind"`
	Time time.Time `json:"time"` // when it happened

	Job      string `json:"job,omitempty"`      // job id (JobFailed)
	Outcome  string `json:"outcome,omitempty"`  // "failed" or "aborted" (JobFailed)
	Detail   string `json:"detail,omitempty"`   // what went wrong, a sentence
	Failed   int    `json:"failed,omitempty"`   // devices that failed (JobFailed)
	Total    int    `json:"total,omitempty"`    // devices in the job (JobFailed)
	Schedule string `json:"schedule,omitempty"` // the schedule that ran the job, if any
	Group    string `json:"group,omitempty"`    // backup group

	Device      string        `json:"device,omitempty"`
	RPO         time.Duration `json:"-"`                     // RPOMissed; rpo_seconds in JSON
	LastSuccess time.Time     `json:"last_success,omitzero"` // RPOMissed; zero: never

	Backup     string    `json:"backup,omitempty"` // data piece id (certification events)
	BackupTime time.Time `json:"backup_time,omitzero"`
	Owner      string    `json:"owner,omitempty"` // the data owner
	By         string    `json:"by,omitempty"`    // who certified or refused
	Note       string    `json:"note,omitempty"`  // their note
	// Since is when the certification became unknown (reminder) or was
	// given (lapsed).
	Since time.Time `json:"since,omitzero"`

	// Events are the day's events of a Digest, in the order they happened.
	Events []Event `json:"events,omitempty"`
}

// Validate checks that e has a known kind, a time and the fields its kind
// needs; the error names the kind and the missing field.
func (e Event) Validate() error {
	var missing string
	switch {
	case e.Time.IsZero():
		missing = "time"
	case (e.Kind == JobFailed || e.Kind == JobCompleted) && e.Job == "":
		missing = "job"
	case e.Kind == JobCompleted && e.Outcome == "":
		missing = "outcome"
	case e.Kind == Digest && len(e.Events) == 0:
		missing = "events"
	case e.Kind == JobFailed && e.Outcome != "failed" && e.Outcome != "aborted":
		return fmt.Errorf("notify: %s event: %w: outcome %q is not failed or aborted", e.Kind, ErrInvalid, e.Outcome)
	case e.Kind == RPOMissed && e.Device == "":
		missing = "device"
	case e.Kind == RPOMissed && e.RPO <= 0:
		missing = "rpo"
	case (e.Kind == CertificationReminder || e.Kind == NotCertified || e.Kind == CertificationLapsed) && e.Backup == "":
		missing = "backup"
	case (e.Kind == CertificationReminder || e.Kind == NotCertified || e.Kind == CertificationLapsed) && e.Device == "":
		missing = "device"
	}
	switch e.Kind {
	case JobFailed, RPOMissed, CertificationReminder, NotCertified, CertificationLapsed, JobCompleted, Digest, Test:
	default:
		return fmt.Errorf("notify: event %q: %w: unknown kind %q", e.ID, ErrInvalid, e.Kind)
	}
	if missing != "" {
		return fmt.Errorf("notify: %s event: %w: %s is required", e.Kind, ErrInvalid, missing)
	}
	return nil
}

// NewID returns a fresh random event id.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	return hex.EncodeToString(b[:])
}
