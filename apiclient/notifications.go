package apiclient

import (
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// SecretSet is how a stored secret is shown: never its value.
const SecretSet = "set"

// NotificationPrefs are how a user wants to be told (GET and PUT
// /api/v1/users/{name}/notifications). Mode is on-failure, always or
// never; Digest sends one message a day instead of one per event.
type NotificationPrefs struct {
	User    string `json:"user"`
	Email   string `json:"email,omitempty"`
	Webhook string `json:"webhook,omitempty"`
	// WebhookSecret is SecretSet when a secret is stored, else empty: the
	// secret itself is never shown.
	WebhookSecret string `json:"webhook_secret,omitempty"`
	Mode          string `json:"mode"`
	Digest        bool   `json:"digest"`
}

// NotificationUpdate is the body of PUT /api/v1/users/{name}/notifications:
// only the fields given change. An empty Email or Webhook removes it
// (removing the webhook removes its secret).
type NotificationUpdate struct {
	Email         *string `json:"email,omitempty"`
	Webhook       *string `json:"webhook,omitempty"`
	WebhookSecret *string `json:"webhook_secret,omitempty"`
	Mode          *string `json:"mode,omitempty"`
	Digest        *bool   `json:"digest,omitempty"`
}

// ChannelResult is what one channel did with a test notification.
type ChannelResult struct {
	Channel   string `json:"channel"` // "email" or "webhook"
	Target    string `json:"target"`  // the address or URL
	Delivered bool   `json:"delivered"`
	Error     string `json:"error,omitempty"` // why not
}

// NotificationTest is the answer of POST
// /api/v1/users/{name}/notifications/test: one result per channel the user
// has set.
type NotificationTest struct {
	User     string          `json:"user"`
	Channels []ChannelResult `json:"channels"`
}

// Undeliverable is a notification that did not arrive (GET
// /api/v1/notifications/undeliverable, admin only).
type Undeliverable struct {
	Time     time.Time `json:"time"`
	User     string    `json:"user,omitempty"`
	Kind     string    `json:"kind"`
	Event    string    `json:"event"`
	Target   string    `json:"target"`
	Attempts int       `json:"attempts"`
	Error    string    `json:"error"`
}

// StatsQuery selects the statistics of GET /api/v1/stats: the devices of
// an owner or of a device group (both empty: all the caller may see), from
// day Since to day Until (UTC, both included; zero: open).
type StatsQuery struct {
	Owner, Group string
	Since, Until time.Time
}

func (q StatsQuery) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"owner": q.Owner, "group": q.Group} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.DateOnly))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.DateOnly))
	}
	return v
}

// StatsRow is one day's (or the total's) job outcomes over the selected
// devices. SuccessRate is successes over attempts, backups and restores
// together (0 without attempts).
type StatsRow struct {
	Day                 string  `json:"day"` // YYYY-MM-DD, or "total"
	BackupAttempts      int     `json:"backup_attempts"`
	BackupSuccesses     int     `json:"backup_successes"`
	BackupFailures      int     `json:"backup_failures"`
	BytesBackedUp       int64   `json:"bytes_backed_up"`
	RestoreAttempts     int     `json:"restore_attempts"`
	RestoreSuccesses    int     `json:"restore_successes"`
	RestoreFailures     int     `json:"restore_failures"`
	RestoreSecondsTotal float64 `json:"restore_seconds_total"`
	RestoreSecondsMax   float64 `json:"restore_seconds_max"`
	RPOMisses           int     `json:"rpo_misses"`
	SuccessRate         float64 `json:"success_rate"`
}

// Stats is the answer of GET /api/v1/stats: one row per day with history,
// in day order, and their total.
type Stats struct {
	Since         string     `json:"since,omitempty"`
	Until         string     `json:"until,omitempty"`
	Devices       int        `json:"devices"` // how many devices were selected (no selection: the installation's devices)
	RetentionDays int        `json:"retention_days"`
	Days          []StatsRow `json:"days"`
	Total         StatsRow   `json:"total"`
}

// statsColumns is the CSV header, in StatsRow's order.
var statsColumns = []string{"day", "backup_attempts", "backup_successes", "backup_failures", "bytes_backed_up",
	"restore_attempts", "restore_successes", "restore_failures", "restore_seconds_total", "restore_seconds_max", "rpo_misses", "success_rate"}

// WriteCSV writes s as CSV: a header, one line per day, then the total
// (day "total"). The API's text/csv answer and the CLI's --csv are this.
func (s Stats) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(statsColumns)
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	for _, r := range append(append([]StatsRow(nil), s.Days...), s.Total) {
		_ = cw.Write([]string{r.Day, strconv.Itoa(r.BackupAttempts), strconv.Itoa(r.BackupSuccesses), strconv.Itoa(r.BackupFailures),
			strconv.FormatInt(r.BytesBackedUp, 10), strconv.Itoa(r.RestoreAttempts), strconv.Itoa(r.RestoreSuccesses),
			strconv.Itoa(r.RestoreFailures), f(r.RestoreSecondsTotal), f(r.RestoreSecondsMax), strconv.Itoa(r.RPOMisses), f(r.SuccessRate)})
	}
	cw.Flush()
	return cw.Error()
}

// StatsRetention is the body of PUT /api/v1/stats/retention.
type StatsRetention struct {
	Days int `json:"days"`
}

// prefsPath is where a user's notification preferences are: user "" is
// the caller (/me).
func prefsPath(user string) string {
	if user == "" {
		return APIPrefix + "/me/notifications"
	}
	return APIPrefix + "/users/" + esc(user) + "/notifications"
}

// NotificationPrefs returns a user's notification preferences (their own,
// or anyone's for an admin); user "" is the caller.
func (c *Client) NotificationPrefs(ctx context.Context, user string) (NotificationPrefs, error) {
	var out NotificationPrefs
	return out, c.do(ctx, http.MethodGet, prefsPath(user), nil, nil, "", &out)
}

// SetNotificationPrefs changes a user's notification preferences and
// returns them; user "" is the caller.
func (c *Client) SetNotificationPrefs(ctx context.Context, user string, u NotificationUpdate) (NotificationPrefs, error) {
	var out NotificationPrefs
	return out, c.putJSON(ctx, prefsPath(user), u, &out)
}

// TestNotifications sends a test event to each of a user's channels, once,
// and reports per channel whether it arrived.
func (c *Client) TestNotifications(ctx context.Context, user string) (NotificationTest, error) {
	var out NotificationTest
	return out, c.postJSON(ctx, prefsPath(user)+"/test", nil, struct{}{}, &out)
}

// Undeliverable lists the notifications that did not arrive, newest first,
// at most limit (0: all kept) (admin only).
func (c *Client) Undeliverable(ctx context.Context, limit int) ([]Undeliverable, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out []Undeliverable
	return out, c.do(ctx, http.MethodGet, APIPrefix+"/notifications/undeliverable", q, nil, "", &out)
}

// Stats returns the statistics of job outcomes (an owner: only of their
// devices).
func (c *Client) Stats(ctx context.Context, q StatsQuery) (Stats, error) {
	var out Stats
	return out, c.do(ctx, http.MethodGet, APIPrefix+"/stats", q.values(), nil, "", &out)
}

// SetStatsRetention sets how many days of history are kept (admin only).
func (c *Client) SetStatsRetention(ctx context.Context, days int) error {
	return c.putJSON(ctx, APIPrefix+"/stats/retention", StatsRetention{Days: days}, nil)
}
