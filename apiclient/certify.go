package apiclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/fleetvault/fleetvault/catalog"
)

// Certification is a backup's certification as the API shows it
// (GET /backups/{id}/certification): the state a data owner gave it, the
// last test restore's evidence, and what the policy of its device's category
// does next.
type Certification struct {
	Backup     string    `json:"backup"`
	Client     string    `json:"client"`
	Group      string    `json:"group,omitempty"`
	Owner      string    `json:"owner,omitempty"`
	Category   string    `json:"category"` // of the device: critical or non-critical
	BackupTime time.Time `json:"backup_time"`
	// Current: the newest backup of its device, the one a group's derived
	// state and the reminders look at.
	Current bool `json:"current"`

	State string     `json:"state"` // unknown, certified or not-certified
	By    string     `json:"by,omitempty"`
	At    *time.Time `json:"at,omitempty"`
	Note  string     `json:"note,omitempty"`
	// Evidence is the last test restore's (it never certifies by itself).
	Evidence   *catalog.TestEvidence `json:"evidence,omitempty"`
	RemindedAt *time.Time            `json:"reminded_at,omitempty"`
	// LapsesAt is when a certification lapses back to unknown, under its
	// category's policy; absent when it does not.
	LapsesAt *time.Time `json:"lapses_at,omitempty"`
}

// BackupCertification is the certification a backup listing shows.
type BackupCertification struct {
	State string     `json:"state"`
	By    string     `json:"by,omitempty"`
	At    *time.Time `json:"at,omitempty"`
}

// CertifyRequest is the body of PUT /backups/{id}/certification: the data
// owner's decision, "certified" or "not-certified", with a note.
type CertifyRequest struct {
	State string `json:"state"`
	Note  string `json:"note,omitempty"`
}

// TestRestoreRequest is the body of POST /backups/{id}/test-restore: Into is
// "twin" (a simulated device made from the backup's tag, run by the server)
// or the id of a device marked as a test bench.
type TestRestoreRequest struct {
	Into string `json:"into"`
}

// TestRestoreInto is the Into of a test restore into a twin.
const TestRestoreInto = "twin"

// CertificationQuery selects certifications (GET /certifications): of the
// caller's backups, by state, backup group and client; Current keeps only
// each device's newest backup. At most Limit (0: 1000).
type CertificationQuery struct {
	State   string
	Group   string
	Client  string
	Current bool
	Limit   int
}

// GroupCertification is a backup group's derived certification
// (GET /groups/{name}/certification): certified when every current backup
// (the newest of each device) is, not-certified when any is, else unknown.
type GroupCertification struct {
	Group   string          `json:"group"`
	State   string          `json:"state"`
	Counts  map[string]int  `json:"counts"` // by state, over Backups
	Backups []Certification `json:"backups"`
}

// CertPolicy is a device category's certification policy
// (GET /certification-policies): LapseDays after which a certification
// lapses to unknown (0: never), RemindDays between reminders while unknown
// (0: none). Default says it is the built-in one (nothing stored).
type CertPolicy struct {
	Category   string `json:"category"`
	LapseDays  int    `json:"lapse_days"`
	RemindDays int    `json:"remind_days"`
	Default    bool   `json:"default"`
}

// DeviceUpdate is the body of PATCH /devices/{id}: the fields to change,
// absent ones unchanged.
type DeviceUpdate struct {
	Category  *string `json:"category,omitempty"`   // critical or non-critical
	TestBench *bool   `json:"test_bench,omitempty"` // a test restore may write it
}

// Certification returns a backup's certification.
func (c *Client) Certification(ctx context.Context, backup string) (Certification, error) {
	var out Certification
	return out, c.do(ctx, http.MethodGet, APIPrefix+"/backups/"+esc(backup)+"/certification", nil, nil, "", &out)
}

// Certify records the data owner's decision on a backup.
func (c *Client) Certify(ctx context.Context, backup string, req CertifyRequest) (Certification, error) {
	var out Certification
	return out, c.putJSON(ctx, APIPrefix+"/backups/"+esc(backup)+"/certification", req, &out)
}

// TestRestore restores a backup into a twin or a test-bench device and
// records the evidence on its certification (which it does not change).
func (c *Client) TestRestore(ctx context.Context, backup string, req TestRestoreRequest) (Certification, error) {
	var out Certification
	return out, c.postJSON(ctx, APIPrefix+"/backups/"+esc(backup)+"/test-restore", nil, req, &out)
}

// Certifications lists the certifications of the caller's backups.
func (c *Client) Certifications(ctx context.Context, q CertificationQuery) ([]Certification, error) {
	v := url.Values{}
	for k, s := range map[string]string{"state": q.State, "group": q.Group, "client": q.Client} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.Current {
		v.Set("current", "true")
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out []Certification
	return out, c.do(ctx, http.MethodGet, APIPrefix+"/certifications", v, nil, "", &out)
}

// GroupCertification returns a backup group's derived certification.
func (c *Client) GroupCertification(ctx context.Context, group string) (GroupCertification, error) {
	var out GroupCertification
	return out, c.do(ctx, http.MethodGet, APIPrefix+"/groups/"+esc(group)+"/certification", nil, nil, "", &out)
}

// CertificationPolicies returns the policy of each device category.
func (c *Client) CertificationPolicies(ctx context.Context) ([]CertPolicy, error) {
	var out []CertPolicy
	return out, c.do(ctx, http.MethodGet, APIPrefix+"/certification-policies", nil, nil, "", &out)
}

// SetCertificationPolicy stores a category's policy (admin only).
func (c *Client) SetCertificationPolicy(ctx context.Context, p CertPolicy) (CertPolicy, error) {
	var out CertPolicy
	return out, c.putJSON(ctx, APIPrefix+"/certification-policies/"+esc(p.Category), p, &out)
}

// UpdateDevice changes a device's category or test-bench mark.
func (c *Client) UpdateDevice(ctx context.Context, id string, u DeviceUpdate) (Device, error) {
	var out Device
	body, err := jsonBody(u)
	if err != nil {
		return out, err
	}
	return out, c.do(ctx, http.MethodPatch, APIPrefix+"/devices/"+esc(id), nil, body, "application/json", &out)
}
