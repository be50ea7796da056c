package apiclient

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// The RPO states of a device (RPOStatus.State).
const (
	RPOMet     = "met"     // its last successful backup is within the objective
	RPOMissed  = "missed"  // its last successful backup is older than the objective
	RPOUnknown = "unknown" // never backed up successfully into the schedule's backup group
)

// KeepRule is a backup group's retention, restic's forget counts: keep the
// Last newest backups of each device and the newest of each of the Hourly,
// Daily, Weekly, Monthly and Yearly newest periods. All 0: keep everything.
type KeepRule struct {
	Last    int `json:"last,omitempty"`
	Hourly  int `json:"hourly,omitempty"`
	Daily   int `json:"daily,omitempty"`
	Weekly  int `json:"weekly,omitempty"`
	Monthly int `json:"monthly,omitempty"`
	Yearly  int `json:"yearly,omitempty"`
}

// NewSchedule is a schedule to add or replace (POST /api/v1/schedules).
type NewSchedule struct {
	Name        string `json:"name"`
	DeviceGroup string `json:"device_group"`  // the devices backed up
	BackupGroup string `json:"backup_group"`  // where their backups go
	Cron        string `json:"cron"`          // five fields or a descriptor; UTC unless CRON_TZ=Zone
	RPO         string `json:"rpo,omitempty"` // a duration ("26h"); "" or "0s": none
	// Keep, when set, becomes the backup group's keep rule, applied after
	// each scheduled backup; nil leaves the group's rule as it is.
	Keep *KeepRule `json:"keep,omitempty"`
}

// Schedule is a schedule as the API shows it.
type Schedule struct {
	Name        string    `json:"name"`
	DeviceGroup string    `json:"device_group"`
	BackupGroup string    `json:"backup_group"`
	Cron        string    `json:"cron"`
	RPOSeconds  int64     `json:"rpo_seconds"`    // 0: none
	Keep        *KeepRule `json:"keep,omitempty"` // the backup group's keep rule; nil: it keeps everything
	// NextRun is the next slot; nil until the server's scheduler first sees
	// the schedule.
	NextRun *time.Time   `json:"next_run,omitempty"`
	LastRun *ScheduleRun `json:"last_run,omitempty"` // nil: never ran
	// RPO counts the devices of the device group per RPO state (met, missed,
	// unknown); nil when the schedule has no RPO.
	RPO map[string]int `json:"rpo,omitempty"`
}

// ScheduleRun is what one run of a schedule did.
type ScheduleRun struct {
	Slot    time.Time `json:"slot"`          // the cron slot it ran for
	Job     string    `json:"job,omitempty"` // the backup job; "" when none could start
	Outcome string    `json:"outcome"`       // the job's final state (done, failed, aborted, cancelled) or "error"
	Pruned  int       `json:"pruned"`        // backups retention removed after it
	Detail  string    `json:"detail,omitempty"`
}

// PrunedBackup is a backup retention removes (or would remove), and why.
type PrunedBackup struct {
	ID     string    `json:"id"`
	Device string    `json:"device"`
	Time   time.Time `json:"time"`
	Reason string    `json:"reason"`
}

// PrunePreview is what a schedule's retention would do now to its backup
// group (GET /api/v1/schedules/{name}/prune-preview): the same decision a
// run applies after its backup.
type PrunePreview struct {
	Schedule    string         `json:"schedule"`
	BackupGroup string         `json:"backup_group"`
	Keep        *KeepRule      `json:"keep,omitempty"`
	Remove      []PrunedBackup `json:"remove"`
	Kept        int            `json:"kept"`
}

// RPOStatus is one device's standing against its schedule's RPO.
type RPOStatus struct {
	Device      string     `json:"device"`
	Schedule    string     `json:"schedule"`
	DeviceGroup string     `json:"device_group"`
	BackupGroup string     `json:"backup_group"`
	RPOSeconds  int64      `json:"rpo_seconds"`
	LastSuccess *time.Time `json:"last_success,omitempty"` // nil: never
	AgeSeconds  int64      `json:"age_seconds"`            // 0 when never
	State       string     `json:"state"`                  // RPOMet, RPOMissed or RPOUnknown
}

// Schedules lists the schedules the caller may see.
func (c *Client) Schedules(ctx context.Context) ([]Schedule, error) {
	var out []Schedule
	err := c.do(ctx, http.MethodGet, APIPrefix+"/schedules", nil, nil, "", &out)
	return out, err
}

// Schedule returns one schedule.
func (c *Client) Schedule(ctx context.Context, name string) (Schedule, error) {
	var out Schedule
	err := c.do(ctx, http.MethodGet, APIPrefix+"/schedules/"+esc(name), nil, nil, "", &out)
	return out, err
}

// AddSchedule adds a schedule, or replaces the one of the same name.
func (c *Client) AddSchedule(ctx context.Context, ns NewSchedule) (Schedule, error) {
	var out Schedule
	err := c.postJSON(ctx, APIPrefix+"/schedules", nil, ns, &out)
	return out, err
}

// RemoveSchedule deletes a schedule (its backups stay).
func (c *Client) RemoveSchedule(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, APIPrefix+"/schedules/"+esc(name), nil, nil, "", nil)
}

// RunSchedule runs a schedule once now, without moving its cadence: it
// backs up, waits for the job, applies retention and returns the run.
func (c *Client) RunSchedule(ctx context.Context, name string) (ScheduleRun, error) {
	var out ScheduleRun
	err := c.postJSON(ctx, APIPrefix+"/schedules/"+esc(name)+"/run", nil, struct{}{}, &out)
	return out, err
}

// PrunePreview shows what a schedule's retention would remove now.
func (c *Client) PrunePreview(ctx context.Context, name string) (PrunePreview, error) {
	var out PrunePreview
	err := c.do(ctx, http.MethodGet, APIPrefix+"/schedules/"+esc(name)+"/prune-preview", nil, nil, "", &out)
	return out, err
}

// RPO returns every scheduled device's RPO state the caller may see; group
// ("" all) limits it to one device group.
func (c *Client) RPO(ctx context.Context, group string) ([]RPOStatus, error) {
	var q url.Values
	if group != "" {
		q = url.Values{"group": {group}}
	}
	var out []RPOStatus
	err := c.do(ctx, http.MethodGet, APIPrefix+"/rpo", q, nil, "", &out)
	return out, err
}
