package apiclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/fleetvault/fleetvault/catalog"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fleetvault/fleetvault/grouprestore"
)

// Client calls a Fleetvault server's HTTP API. One method per route; each
// returns the typed answer, or an error: an *APIError carrying the server's
// status and message, or an error saying the server could not be reached.
type Client struct {
	base  string
	token string
	// HTTP is the client used for requests; replace it to set timeouts or
	// TLS. Event streams (WatchJob) are bounded only by their context.
	HTTP *http.Client
}

// NewClient returns a client for the server at baseURL (e.g.
// http://127.0.0.1:8686) authenticating with token.
func NewClient(baseURL, token string) *Client {
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token, HTTP: &http.Client{}}
}

// APIError is an error answer from the server.
type APIError struct {
	Status  int    // HTTP status, e.g. 404
	Message string // the server's sentence: what went wrong and what to do
}

func (e *APIError) Error() string { return e.Message }

// StatusOf returns the HTTP status of an *APIError in err's chain, or 0.
func StatusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// do sends a request and decodes a JSON answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body io.Reader, contentType string, out any) error {
	resp, err := c.send(ctx, method, path, q, body, contentType, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode the server's answer: %w", method, path, err)
	}
	return nil
}

// send performs a request and turns non-2xx answers into *APIError.
func (c *Client) send(ctx context.Context, method, path string, q url.Values, body io.Reader, contentType, accept string) (*http.Response, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", accept)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the Fleetvault server at %s (is fleetvault serve running with --http?): %w", c.base, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var eb ErrorBody
		if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
			eb.Error = fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
		}
		return nil, &APIError{Status: resp.StatusCode, Message: eb.Error}
	}
	return resp, nil
}

func jsonBody(v any) (io.Reader, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return bytes.NewReader(b), nil
}

func (c *Client) postJSON(ctx context.Context, path string, q url.Values, in, out any) error {
	body, err := jsonBody(in)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, path, q, body, "application/json", out)
}

func esc(s string) string { return url.PathEscape(s) }

// Health calls GET /healthz.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	return h, c.do(ctx, http.MethodGet, "/healthz", nil, nil, "", &h)
}

// Metrics calls GET /metrics and returns the Prometheus text.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	resp, err := c.send(ctx, http.MethodGet, "/metrics", nil, nil, "", "text/plain")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// Devices lists devices, only a device group's members when group is set.
func (c *Client) Devices(ctx context.Context, group string) ([]Device, error) {
	var q url.Values
	if group != "" {
		q = url.Values{"group": {group}}
	}
	var out []Device
	return out, c.do(ctx, http.MethodGet, APIPrefix+"/devices", q, nil, "", &out)
}

// DevicesPage lists up to limit devices with ids after after, in id order:
// pass the last id of one page as after to get the next.
func (c *Client) DevicesPage(ctx context.Context, after string, limit int) ([]Device, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if after != "" {
		q.Set("after", after)
	}
	var out []Device
	return out, c.do(ctx, http.MethodGet, APIPrefix+"/devices", q, nil, "", &out)
}

func replaceQuery(replace bool) url.Values {
	if replace {
		return url.Values{"replace": {"true"}}
	}
	return nil
}

// AddDevices adds devices; with replace, existing ones are overwritten.
// Generated passwords are in the result, shown only this once.
func (c *Client) AddDevices(ctx context.Context, devices []NewDevice, replace bool) (AddDevicesResult, error) {
	var out AddDevicesResult
	return out, c.postJSON(ctx, APIPrefix+"/devices", replaceQuery(replace), devices, &out)
}

// ImportDevices sends a device list: contentType is "text/csv",
// "application/yaml" or "application/json".
func (c *Client) ImportDevices(ctx context.Context, contentType string, body io.Reader, replace bool) (AddDevicesResult, error) {
	var out AddDevicesResult
	return out, c.do(ctx, http.MethodPost, APIPrefix+"/devices/import", replaceQuery(replace), body, contentType, &out)
}

// Device returns one device with its latest backup and recent restores.
func (c *Client) Device(ctx context.Context, id string) (Device, error) {
	var out Device
	return out, c.do(ctx, http.MethodGet, APIPrefix+"/devices/"+esc(id), nil, nil, "", &out)
}

// DeleteDevice removes a device and its group memberships.
func (c *Client) DeleteDevice(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, APIPrefix+"/devices/"+esc(id), nil, nil, "", nil)
}

// Groups lists every group with its member count.
func (c *Client) Groups(ctx context.Context) ([]Group, error) {
	var out []Group
	return out, c.do(ctx, http.MethodGet, APIPrefix+"/groups", nil, nil, "", &out)
}

// CreateGroup creates a device group or a backup group.
func (c *Client) CreateGroup(ctx context.Context, g NewGroup) (Group, error) {
	var out Group
	return out, c.postJSON(ctx, APIPrefix+"/groups", nil, g, &out)
}

// Group returns a group with its member count, and its members if asked.
func (c *Client) Group(ctx context.Context, name string, members bool) (Group, error) {
	var q url.Values
	if members {
		q = url.Values{"members": {"true"}}
	}
	var out Group
	return out, c.do(ctx, http.MethodGet, APIPrefix+"/groups/"+esc(name), q, nil, "", &out)
}

// AddMembers adds existing devices to a group.
func (c *Client) AddMembers(ctx context.Context, group string, ids []string) (MembersResult, error) {
	var out MembersResult
	return out, c.postJSON(ctx, APIPrefix+"/groups/"+esc(group)+"/members", nil, Members{Devices: ids}, &out)
}

// RemoveMembers removes devices from a group.
func (c *Client) RemoveMembers(ctx context.Context, group string, ids []string) (MembersResult, error) {
	body, err := jsonBody(Members{Devices: ids})
	if err != nil {
		return MembersResult{}, err
	}
	var out MembersResult
	return out, c.do(ctx, http.MethodDelete, APIPrefix+"/groups/"+esc(group)+"/members", nil, body, "application/json", &out)
}

// BackupQuery selects backups; empty fields do not restrict. Tag is
// "key=value".
type BackupQuery struct {
	Client, Group, Tag string
	From, To           time.Time
	Limit              int
}

// Backups lists backups (data pieces), newest first.
func (c *Client) Backups(ctx context.Context, bq BackupQuery) ([]Backup, error) {
	q := url.Values{}
	for k, v := range map[string]string{"client": bq.Client, "group": bq.Group, "tag": bq.Tag} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !bq.From.IsZero() {
		q.Set("from", bq.From.Format(time.RFC3339Nano))
	}
	if !bq.To.IsZero() {
		q.Set("to", bq.To.Format(time.RFC3339Nano))
	}
	if bq.Limit > 0 {
		q.Set("limit", strconv.Itoa(bq.Limit))
	}
	var out []Backup
	return out, c.do(ctx, http.MethodGet, APIPrefix+"/backups", q, nil, "", &out)
}

// Backup returns one backup with its settings as JSON.
func (c *Client) Backup(ctx context.Context, id string) (Backup, error) {
	var out Backup
	return out, c.do(ctx, http.MethodGet, APIPrefix+"/backups/"+esc(id), nil, nil, "", &out)
}

// DiffBackups compares two backups' settings: what b changes relative to a.
func (c *Client) DiffBackups(ctx context.Context, a, b string) (Diff, error) {
	var out Diff
	return out, c.do(ctx, http.MethodGet, APIPrefix+"/backups/diff", url.Values{"a": {a}, "b": {b}}, nil, "", &out)
}

// Jobs lists every job, newest first.
func (c *Client) Jobs(ctx context.Context) ([]Job, error) {
	var out []Job
	return out, c.do(ctx, http.MethodGet, APIPrefix+"/jobs", nil, nil, "", &out)
}

// StartJob starts a backup, restore or undo job (nj.DryRun must be false).
func (c *Client) StartJob(ctx context.Context, nj NewJob) (Job, error) {
	if nj.DryRun {
		return Job{}, errors.New("StartJob: dry_run is set; use PlanJob for a dry run")
	}
	var out Job
	return out, c.postJSON(ctx, APIPrefix+"/jobs", nil, nj, &out)
}

// PlanJob is a restore's dry run: which device would get which backup.
func (c *Client) PlanJob(ctx context.Context, nj NewJob) (Plan, error) {
	nj.DryRun = true
	var out Plan
	return out, c.postJSON(ctx, APIPrefix+"/jobs", nil, nj, &out)
}

// Job returns a job with its progress; with devices, every device's outcome.
func (c *Client) Job(ctx context.Context, id string, devices bool) (Job, error) {
	var q url.Values
	if devices {
		q = url.Values{"devices": {"true"}}
	}
	var out Job
	return out, c.do(ctx, http.MethodGet, APIPrefix+"/jobs/"+esc(id), q, nil, "", &out)
}

// CancelJob stops a job; devices not started are skipped.
func (c *Client) CancelJob(ctx context.Context, id string) (Job, error) {
	return c.control(ctx, id, "cancel")
}

// PauseJob stops a job starting devices until ResumeJob.
func (c *Client) PauseJob(ctx context.Context, id string) (Job, error) {
	return c.control(ctx, id, "pause")
}

// ResumeJob continues a paused job.
func (c *Client) ResumeJob(ctx context.Context, id string) (Job, error) {
	return c.control(ctx, id, "resume")
}

func (c *Client) control(ctx context.Context, id, what string) (Job, error) {
	var out Job
	return out, c.do(ctx, http.MethodPost, APIPrefix+"/jobs/"+esc(id)+"/"+what, nil, nil, "", &out)
}

// WatchJob follows a job's events (SSE) and calls fn with each progress
// snapshot (at most every 250 ms) until the job ends; it returns the final
// progress. fn may be nil; an error from fn stops watching and is returned.
func (c *Client) WatchJob(ctx context.Context, id string, fn func(grouprestore.Progress) error) (grouprestore.Progress, error) {
	var last grouprestore.Progress
	resp, err := c.send(ctx, http.MethodGet, APIPrefix+"/jobs/"+esc(id)+"/events", nil, nil, "", "text/event-stream")
	if err != nil {
		return last, err
	}
	defer resp.Body.Close()
	var ended bool
	err = ReadEvents(resp.Body, func(ev Event) error {
		var p grouprestore.Progress
		if err := json.Unmarshal(ev.Data, &p); err != nil {
			return fmt.Errorf("job %s: bad %s event: %w", id, ev.Name, err)
		}
		last = p
		switch ev.Name {
		case "end":
			ended = true
			return errStopEvents
		case "progress":
			if fn != nil {
				return fn(p)
			}
		}
		return nil
	})
	if err != nil {
		return last, err
	}
	if !ended {
		if ctx.Err() != nil {
			return last, ctx.Err()
		}
		return last, fmt.Errorf("job %s: the event stream ended before the job did; watch again to continue", id)
	}
	return last, nil
}

// Event is one Server-Sent Event.
type Event struct {
	Name string // "progress" or "end"
	ID   string
	Data []byte
}

var errStopEvents = errors.New("stop reading events")

// ReadEvents parses a Server-Sent Events stream and calls fn for each event,
// until the stream ends or fn returns an error (returned, except the
// internal stop signal).
func ReadEvents(r io.Reader, fn func(Event) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var ev Event
	var data [][]byte
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			if len(data) > 0 || ev.Name != "" {
				ev.Data = bytes.Join(data, []byte("\n"))
				if ev.Name == "" {
					ev.Name = "message"
				}
				if err := fn(ev); err != nil {
					if errors.Is(err, errStopEvents) {
						return nil
					}
					return err
				}
			}
			ev, data = Event{}, nil
			continue
		}
		if line[0] == ':' {
			continue // a comment (keep-alive)
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			ev.Name = string(value)
		case "id":
			ev.ID = string(value)
		case "data":
			data = append(data, append([]byte(nil), value...))
		}
	}
	return sc.Err()
}

// ExportCatalog writes the catalog export ("sql" or "json") to w.
func (c *Client) ExportCatalog(ctx context.Context, format string, w io.Writer) error {
	resp, err := c.send(ctx, http.MethodGet, APIPrefix+"/catalog/export", url.Values{"format": {format}}, nil, "", "*/*")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("catalog export: %w", err)
	}
	return nil
}

// AuditQuery selects audit entries; empty fields do not restrict.
type AuditQuery struct {
	User  string
	Since time.Time
	Limit int
}

// Audit reads the audit log (admin only), oldest first.
func (c *Client) Audit(ctx context.Context, aq AuditQuery) ([]catalog.AuditEntry, error) {
	q := url.Values{}
	if aq.User != "" {
		q.Set("user", aq.User)
	}
	if !aq.Since.IsZero() {
		q.Set("since", aq.Since.Format(time.RFC3339Nano))
	}
	if aq.Limit > 0 {
		q.Set("limit", strconv.Itoa(aq.Limit))
	}
	var out []catalog.AuditEntry
	return out, c.do(ctx, http.MethodGet, APIPrefix+"/audit", q, nil, "", &out)
}

// Users lists the users (admin only).
func (c *Client) Users(ctx context.Context) ([]User, error) {
	var out []User
	return out, c.do(ctx, http.MethodGet, APIPrefix+"/users", nil, nil, "", &out)
}

// AddUser adds a user with a role and a password (admin only).
func (c *Client) AddUser(ctx context.Context, name, role, password string) error {
	return c.postJSON(ctx, APIPrefix+"/users", nil, NewUser{Name: name, Role: role, Password: password}, nil)
}

// SetPassword replaces a user's password (admin only).
func (c *Client) SetPassword(ctx context.Context, name, password string) error {
	return c.postJSON(ctx, APIPrefix+"/users/"+esc(name)+"/password", nil, Password{Password: password}, nil)
}

// DisableUser disables a user and every token acting as them (admin only).
func (c *Client) DisableUser(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodPost, APIPrefix+"/users/"+esc(name)+"/disable", nil, nil, "", nil)
}

// AssignOwner makes user the data owner of the resources in a (admin only).
func (c *Client) AssignOwner(ctx context.Context, user string, a catalog.Assignment) error {
	return c.postJSON(ctx, APIPrefix+"/owners/"+esc(user)+"/assign", nil, a, nil)
}

// UnassignOwner takes the resources in a from user (admin only).
func (c *Client) UnassignOwner(ctx context.Context, user string, a catalog.Assignment) error {
	return c.postJSON(ctx, APIPrefix+"/owners/"+esc(user)+"/unassign", nil, a, nil)
}

// CreateToken makes an API token that acts as user and returns it, shown
// this once (admin only).
func (c *Client) CreateToken(ctx context.Context, name, user string) (string, error) {
	var out Token
	err := c.postJSON(ctx, APIPrefix+"/tokens", nil, NewToken{Name: name, User: user}, &out)
	return out.Token, err
}
