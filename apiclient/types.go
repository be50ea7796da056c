package apiclient

import (
	"time"

	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/settingsdoc"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// APIPrefix is where the authenticated JSON API lives.
const APIPrefix = "/api/v1"

// The wire types of the HTTP API: the bodies the API takes and answers with.
// The API (package api) fills them; Client decodes them.

// NewDevice is one device to add (POST /api/v1/devices).
type NewDevice struct {
	ID         string       `json:"id"`
	Password   string       `json:"password,omitempty"`   // absent: one is generated and returned once
	Identifier string       `json:"identifier,omitempty"` // absent: mqtt://<id>
	Tag        tagmatch.Tag `json:"tag,omitempty"`
	Domain     string       `json:"domain,omitempty"`
	Category   string       `json:"category,omitempty"`
	Owner      string       `json:"owner,omitempty"`
	Group      string       `json:"group,omitempty"` // also add it to this device group (created if missing)
	Type       string       `json:"type,omitempty"`  // device type, informational
	// CoAPKey is the device's DTLS pre-shared key in hexadecimal (32 to 128
	// digits); a coaps:// device needs one.
	CoAPKey string `json:"coap_key,omitempty"`
}

// Device is a device as the API shows it: never its password hash.
type Device struct {
	ID          string            `json:"id"`
	Identifier  string            `json:"identifier,omitempty"`
	Domain      string            `json:"domain,omitempty"`
	Category    string            `json:"category,omitempty"`
	Owner       string            `json:"owner,omitempty"`
	Catalog     string            `json:"catalog,omitempty"`
	Role        string            `json:"role,omitempty"`
	Tag         tagmatch.Tag      `json:"tag,omitempty"`
	HasPassword bool              `json:"has_password"`
	Optional    map[string]string `json:"optional,omitempty"`
	// Filled by GET /devices/{id} only.
	LatestBackup *Backup                `json:"latest_backup,omitempty"`
	Restores     []catalog.RestoreEvent `json:"restores,omitempty"`
}

// AddedDevice is one line of an add or import answer. Password is set only
// when the server generated it: it is shown this once and stored hashed.
type AddedDevice struct {
	ID       string `json:"id"`
	Password string `json:"password,omitempty"`
	Group    string `json:"group,omitempty"`
}

// AddDevicesResult answers POST /devices and POST /devices/import.
type AddDevicesResult struct {
	Devices       []AddedDevice `json:"devices"`
	GroupsCreated []string      `json:"groups_created,omitempty"`
}

// NewGroup is the body of POST /api/v1/groups.
type NewGroup struct {
	Name        string            `json:"name"`
	Kind        string            `json:"kind"` // "devices" (default) or "backup"
	Domain      string            `json:"domain,omitempty"`
	Category    string            `json:"category,omitempty"`
	Owner       string            `json:"owner,omitempty"`
	Schedule    string            `json:"schedule,omitempty"`
	Description string            `json:"description,omitempty"`
	Optional    map[string]string `json:"optional,omitempty"`
}

// Group is a group as the API shows it, with its member count.
type Group struct {
	catalog.Group
	MemberCount int      `json:"member_count"`
	Members     []string `json:"members,omitempty"` // with ?members=true
}

// Members is the body of POST and DELETE /api/v1/groups/{name}/members.
type Members struct {
	Devices []string `json:"devices"`
}

// MembersResult answers a membership change.
type MembersResult struct {
	Group       string   `json:"group"`
	Changed     []string `json:"changed"`
	MemberCount int      `json:"member_count"`
}

// Backup is a data piece as the API shows it.
type Backup struct {
	ID       string            `json:"id"`
	Client   string            `json:"client"`
	Name     string            `json:"name"`
	Type     string            `json:"type"`
	Owner    string            `json:"owner,omitempty"`
	Location string            `json:"location"`
	Group    string            `json:"group,omitempty"`
	Job      string            `json:"job,omitempty"`
	Time     time.Time         `json:"time"`
	Expiry   *time.Time        `json:"expiry,omitempty"`
	Size     int64             `json:"size"`
	Tag      tagmatch.Tag      `json:"tag"`
	Hash     string            `json:"hash"`
	Optional map[string]string `json:"optional,omitempty"`
	// Certification is the backup's certification (unknown when none was
	// given); filled by the backup listing and GET /backups/{id}.
	Certification *BackupCertification `json:"certification,omitempty"`
	// Settings, decoded from CBOR, with GET /backups/{id} only.
	Settings any `json:"settings,omitempty"`
}

// Change is one difference between two settings documents, at a JSON
// Pointer (RFC 6901) path.
type Change = settingsdoc.Change

// Diff answers GET /backups/diff: what b changes relative to a.
type Diff = settingsdoc.Diff

// Rollout is grouprestore.Rollout with durations as text ("5s", "200ms").
type Rollout struct {
	Concurrency     int     `json:"concurrency,omitempty"`
	Rate            float64 `json:"rate,omitempty"`
	Canary          int     `json:"canary,omitempty"`
	CanaryShare     float64 `json:"canary_share,omitempty"`
	WaveSize        int     `json:"wave_size,omitempty"`
	Timeout         string  `json:"timeout,omitempty"`
	Retries         int     `json:"retries,omitempty"`
	Backoff         string  `json:"backoff,omitempty"`
	OfflineTTL      string  `json:"offline_ttl,omitempty"`
	MaxFailureShare float64 `json:"max_failure_share,omitempty"`
	MinFailures     int     `json:"min_failures,omitempty"`
	MaxNoMatchShare float64 `json:"max_nomatch_share,omitempty"`
	MinNoMatches    int     `json:"min_nomatches,omitempty"`
	ReadBack        bool    `json:"read_back,omitempty"`
}

// NewJob is the body of POST /api/v1/jobs.
type NewJob struct {
	Kind    string  `json:"kind"`   // backup, restore, undo or drift
	Source  string  `json:"source"` // restore: backup group; backup: device group; undo: the job to undo; drift: the backup group to compare with (optional)
	Target  string  `json:"target"` // restore: device group; backup: backup group; drift: the device group to check
	Policy  string  `json:"policy,omitempty"`
	Rollout Rollout `json:"rollout"`
	DryRun  bool    `json:"dry_run,omitempty"`

	// Profile names the restore profile to apply (default: the one attached
	// to the backup group); NoProfile restores whole documents regardless.
	Profile   string `json:"profile,omitempty"`
	NoProfile bool   `json:"no_profile,omitempty"`

	// AsOf restores each backup current at that time (RFC 3339, or a date:
	// its end). Device with Piece or FromDevice restores one backup to one
	// device (a replacement); AllowTagMismatch writes it even when the tags
	// do not match.
	AsOf             string `json:"as_of,omitempty"`
	Device           string `json:"device,omitempty"`
	Piece            string `json:"piece,omitempty"`
	FromDevice       string `json:"from_device,omitempty"`
	AllowTagMismatch bool   `json:"allow_tag_mismatch,omitempty"`

	// Continuous keeps the restore standing on the device group until it is
	// cancelled; Rescan (e.g. "5s") is how often it reads the group again.
	Continuous bool   `json:"continuous,omitempty"`
	Rescan     string `json:"rescan,omitempty"`
}

// Replacement reports whether a restore request names one device.
func (nj NewJob) Replacement() bool {
	return nj.Device != "" || nj.Piece != "" || nj.FromDevice != ""
}

// Job is a job as the API shows it.
type Job struct {
	ID       string                       `json:"id"`
	Kind     grouprestore.Kind            `json:"kind"`
	Source   string                       `json:"source"`
	Target   string                       `json:"target"`
	Policy   string                       `json:"policy,omitempty"`
	Rollout  Rollout                      `json:"rollout"`
	State    grouprestore.JobState        `json:"state"`
	Reason   string                       `json:"reason,omitempty"`
	Error    string                       `json:"error,omitempty"` // job-level error while a failing write pauses it
	Created  *time.Time                   `json:"created,omitempty"`
	Updated  *time.Time                   `json:"updated,omitempty"`
	Total    int                          `json:"total"`
	Progress *grouprestore.Progress       `json:"progress,omitempty"`
	Devices  []grouprestore.DeviceOutcome `json:"devices,omitempty"` // with ?devices=true

	Profile *settingsdoc.Profile `json:"profile,omitempty"` // the restore profile applied

	// A restore's choice of version and destination (see NewJob).
	AsOf             *time.Time `json:"as_of,omitempty"`
	Device           string     `json:"device,omitempty"`
	Piece            string     `json:"piece,omitempty"`
	AllowTagMismatch bool       `json:"allow_tag_mismatch,omitempty"`
	Continuous       bool       `json:"continuous,omitempty"`
}

// GroupProfile is the body of PUT /groups/{name}/profile: the profile a
// backup group's restores use by default ("" detaches it).
type GroupProfile struct {
	Group   string `json:"group,omitempty"`
	Profile string `json:"profile"`
}

// Plan answers a dry run (POST /api/v1/jobs with dry_run: true).
type Plan struct {
	DryRun  bool                       `json:"dry_run"`
	Kind    grouprestore.Kind          `json:"kind"`
	Source  string                     `json:"source"`
	Target  string                     `json:"target"`
	Counts  map[grouprestore.State]int `json:"counts"`
	Entries []grouprestore.PlanEntry   `json:"entries"`
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error string `json:"error"`
}

// Health is the body of GET /healthz.
type Health struct {
	Status    string `json:"status"`
	Broker    string `json:"broker"`
	Jobs      int    `json:"running_jobs"`
	DRMode    bool   `json:"dr_mode"`
	UptimeSec int64  `json:"uptime_s"`
}

// User is a user as the API shows it: never their password hash.
type User struct {
	Name     string    `json:"name"`
	Role     string    `json:"role"`
	Disabled bool      `json:"disabled"`
	Created  time.Time `json:"created"`
}

// NewUser is the body of POST /api/v1/users.
type NewUser struct {
	Name     string `json:"name"`
	Role     string `json:"role"` // admin, operator or owner
	Password string `json:"password"`
}

// Password is the body of POST /api/v1/users/{name}/password.
type Password struct {
	Password string `json:"password"`
}

// NewToken is the body of POST /api/v1/tokens.
type NewToken struct {
	Name string `json:"name"`
	User string `json:"user"`
}

// Token answers POST /api/v1/tokens: the token, shown this once.
type Token struct {
	Name  string `json:"name"`
	User  string `json:"user"`
	Token string `json:"token"`
}
