package server

import (
	"context"
	"crypto/tls"
	"errors"
	"mime"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/agent/agenttest"
	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/dispatch"
	"github.com/fleetvault/fleetvault/httpguard"
	"github.com/fleetvault/fleetvault/notify"
	"github.com/fleetvault/fleetvault/notify/notifytest"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// brokenDevice answers its tag but cannot read its settings: its backups
// fail.
type brokenDevice struct{}

func (brokenDevice) Tag(context.Context) (tagmatch.Tag, error) { return tag("North"), nil }
func (brokenDevice) Settings(context.Context) (agent.Settings, error) {
	return nil, errors.New("settings store corrupt")
}
func (brokenDevice) Apply(context.Context, agent.Settings) error { return errors.New("read-only") }

// notifyWorld is a server configured with a real SMTP server, users with
// notification preferences, and devices each owned by one of them.
type notifyWorld struct {
	s     *Server
	c     *apiclient.Client
	smtp  *notifytest.SMTPServer
	hooks map[string]*notifytest.Hook // by user
	ctx   context.Context
}

// The users of the notification test: each one's preferences and the hook
// their webhook (if any) reaches: failing its first requests, or always.
var notifyUsers = []struct {
	name, mode string
	email      bool
	hookFails  int // -1: no webhook
}{
	{"alice", catalog.NotifyOnFailure, true, 0},
	{"bob", catalog.NotifyOnFailure, false, 3},    // arrives on the fourth try
	{"carol", catalog.NotifyOnFailure, false, 99}, // never arrives: undeliverable
	{"dave", catalog.NotifyNever, true, -1},
	{"erin", catalog.NotifyAlways, true, -1},
}

func hookSecret(user string) string { return "webhook-secret-of-" + user + "-0123456789" }

func startNotifyWorld(t *testing.T) *notifyWorld {
	t.Helper()
	w := &notifyWorld{smtp: notifytest.StartSMTP(t), hooks: map[string]*notifytest.Hook{}, ctx: context.Background()}
	mbr, err := catalog.Init(t.TempDir(), catalog.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.s, err = Start(w.ctx, Options{MBR: mbr, MQTTAddr: "127.0.0.1:0", CoAPListen: "127.0.0.1:0",
		HTTPThrottle: httpguard.ThrottleOptions{Failures: 1 << 20},
		Notify: dispatch.Options{
			Email: &notify.EmailOptions{Host: "127.0.0.1", Port: w.smtp.Addr.Port, Username: notifytest.User, Password: notifytest.Password,
				From: "Fleetvault <fleetvault@example.com>", TLSConfig: &tls.Config{RootCAs: w.smtp.Roots}, Timeout: 10 * time.Second},
			Attempts: 4, BaseDelay: time.Millisecond, MaxDelay: 4 * time.Millisecond,
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.s.Close() })
	token, err := w.s.Tokens().Create("admin")
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(w.s.Handler())
	t.Cleanup(ts.Close)
	w.c = apiclient.NewClient(ts.URL, token)

	var devs []catalog.Device
	pws := map[string]string{}
	for _, u := range notifyUsers {
		if err := w.s.Catalog.CreateUser(catalog.User{Name: u.name, Role: catalog.UserOwner}); err != nil {
			t.Fatal(err)
		}
		upd := apiclient.NotificationUpdate{Mode: &u.mode}
		if u.email {
			addr := u.name + "@example.com"
			upd.Email = &addr
		}
		if u.hookFails >= 0 {
			secret := hookSecret(u.name)
			w.hooks[u.name] = notifytest.StartHook(t, []byte(secret), u.hookFails, 503)
			url := w.hooks[u.name].URL() + "/hook"
			upd.Webhook, upd.WebhookSecret = &url, &secret
		}
		if _, err := w.c.SetNotificationPrefs(w.ctx, u.name, upd); err != nil {
			t.Fatal(err)
		}
		id := "dev-" + u.name
		pws[id] = broker.NewSecret()
		h, err := broker.HashPassword(pws[id])
		if err != nil {
			t.Fatal(err)
		}
		devs = append(devs, catalog.Device{ID: id, Owner: u.name, Identifier: "mqtt://" + id, PasswordHash: h, Role: "device"})
	}
	if err := w.s.Catalog.PutDevices(w.ctx, devs); err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		var dev agent.Device = agenttest.NewMemDevice(tag("North"), agent.Settings{"setpoint": 20})
		if d.ID == "dev-bob" {
			dev = brokenDevice{}
		}
		serveDevice(t, w.s, d.ID, pws[d.ID], dev)
	}
	return w
}

func (w *notifyWorld) group(t *testing.T, name string, members ...string) {
	t.Helper()
	if err := w.s.Catalog.CreateGroup(name, catalog.Group{Kind: catalog.GroupDevices}); err != nil {
		t.Fatal(err)
	}
	if err := w.s.Catalog.AddMembers(name, members); err != nil {
		t.Fatal(err)
	}
}

func (w *notifyWorld) backup(t *testing.T, source, target string) apiclient.Job {
	t.Helper()
	j, err := w.c.StartJob(w.ctx, apiclient.NewJob{Kind: "backup", Source: source, Target: target})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if j, err = w.c.Job(w.ctx, j.ID, true); err != nil {
			t.Fatal(err)
		}
		if j.State.Final() {
			return j
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("job %s did not end", j.ID)
	return j
}

// mailsTo returns the subjects and bodies of the mails that reached addr.
func (w *notifyWorld) mailsTo(t *testing.T, addr string) (subjects, bodies []string) {
	t.Helper()
	dec := new(mime.WordDecoder)
	for _, m := range w.smtp.Received() {
		if len(m.To) != 1 || m.To[0] != addr {
			continue
		}
		if !m.TLS || m.User != notifytest.User {
			t.Errorf("mail to %s: tls %v, login %q", addr, m.TLS, m.User)
		}
		s, err := dec.DecodeHeader(m.Header.Get("Subject"))
		if err != nil {
			t.Fatal(err)
		}
		subjects, bodies = append(subjects, s), append(bodies, m.Body)
	}
	return subjects, bodies
}

// TestNotificationsEndToEnd runs backups through a configured server and
// checks what reaches whom: emails at a real SMTP server, signed webhooks,
// a webhook that fails three times, one that never answers well (kept as
// undeliverable and counted on /metrics), mode never and mode always.
func TestNotificationsEndToEnd(t *testing.T) {
	w := startNotifyWorld(t)
	w.group(t, "everyone", "dev-alice", "dev-bob", "dev-carol", "dev-dave", "dev-erin")
	w.group(t, "healthy", "dev-alice", "dev-erin")

	failed := w.backup(t, "everyone", "nightly")
	// alice's email and webhook, bob's and carol's webhooks, erin's email.
	notifytest.WaitFor(t, 60*time.Second, func() bool {
		st := w.s.Notifications.Stats()
		return st.Sent+st.Undeliverable >= 5 && st.Undeliverable >= 1
	})
	wantSubject := "[Fleetvault] Job " + failed.ID + " failed: nightly"
	t.Run("on-failure email", func(t *testing.T) {
		subjects, bodies := w.mailsTo(t, "alice@example.com")
		if len(subjects) != 1 || subjects[0] != wantSubject {
			t.Fatalf("alice got %q, want one %q", subjects, wantSubject)
		}
		for _, want := range []string{"The job " + failed.ID + " failed at ", "Backup group: nightly", "Devices:      1 of 5 failed",
			"1 failed. First: dev-bob: failed", "fleetvault jobs show " + failed.ID} {
			if !strings.Contains(bodies[0], want) {
				t.Errorf("alice's body lacks %q:\n%s", want, bodies[0])
			}
		}
	})
	t.Run("signed webhook", func(t *testing.T) {
		requests, bad, got, _ := w.hooks["alice"].Snapshot()
		if requests != 1 || len(bad) > 0 || len(got) != 1 {
			t.Fatalf("alice's hook: %d requests, bad %v, %d kept", requests, bad, len(got))
		}
		if got[0]["kind"] != string(notify.JobFailed) || got[0]["job"] != failed.ID || got[0]["subject"] != wantSubject || got[0]["failed"] != 1.0 {
			t.Fatalf("alice's hook got %v", got[0])
		}
	})
	t.Run("fails three times, arrives on the fourth", func(t *testing.T) {
		requests, bad, got, _ := w.hooks["bob"].Snapshot()
		if requests != 4 || len(bad) > 0 || len(got) != 1 || got[0]["job"] != failed.ID {
			t.Fatalf("bob's hook: %d requests, bad %v, kept %v", requests, bad, got)
		}
	})
	t.Run("never arrives: undeliverable", func(t *testing.T) {
		requests, _, got, _ := w.hooks["carol"].Snapshot()
		us, err := w.c.Undeliverable(w.ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if requests != 4 || len(got) != 0 || len(us) != 1 || us[0].User != "carol" || us[0].Kind != string(notify.JobFailed) ||
			us[0].Target != "webhook "+w.hooks["carol"].URL()+"/hook" || us[0].Attempts != 4 {
			t.Fatalf("carol's hook: %d requests, %d kept; undeliverable %+v", requests, len(got), us)
		}
		m, err := w.c.Metrics(w.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(m, `fleetvault_notifications_total{result="undeliverable"} 1`) {
			t.Fatalf("/metrics:\n%s", grepLines(m, "fleetvault_notif"))
		}
	})
	t.Run("never", func(t *testing.T) {
		if subjects, _ := w.mailsTo(t, "dave@example.com"); len(subjects) != 0 {
			t.Fatalf("dave (never) got %q", subjects)
		}
	})

	done := w.backup(t, "healthy", "nightly")
	notifytest.WaitFor(t, 30*time.Second, func() bool { s, _ := w.mailsTo(t, "erin@example.com"); return len(s) >= 2 })
	t.Run("always", func(t *testing.T) {
		subjects, bodies := w.mailsTo(t, "erin@example.com")
		want := []string{wantSubject, "[Fleetvault] Job " + done.ID + " done: nightly"}
		if strings.Join(subjects, "|") != strings.Join(want, "|") || !strings.Contains(bodies[1], "Devices:      2, none failed") {
			t.Fatalf("erin (always) got %q, want %q:\n%s", subjects, want, strings.Join(bodies, "\n---\n"))
		}
		if subjects, _ := w.mailsTo(t, "alice@example.com"); len(subjects) != 1 {
			t.Fatalf("alice (on-failure) got %q after a job that went well", subjects)
		}
	})
	t.Run("history", func(t *testing.T) {
		st, err := w.c.Stats(w.ctx, apiclient.StatsQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if tot := st.Total; tot.BackupAttempts != 7 || tot.BackupSuccesses != 6 || tot.BackupFailures != 1 || tot.BytesBackedUp <= 0 {
			t.Fatalf("stats total %+v", tot)
		}
	})
}

// TestNotificationTest: notify test reports per channel, through the real
// channels.
func TestNotificationTest(t *testing.T) {
	w := startNotifyWorld(t)
	tests := []struct {
		user string
		want []apiclient.ChannelResult
	}{
		{"alice", []apiclient.ChannelResult{{Channel: "email", Target: "alice@example.com", Delivered: true}, {Channel: "webhook", Target: w.hooks["alice"].URL() + "/hook", Delivered: true}}},
		{"carol", []apiclient.ChannelResult{{Channel: "webhook", Target: w.hooks["carol"].URL() + "/hook"}}},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			got, err := w.c.TestNotifications(w.ctx, tt.user)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Channels) != len(tt.want) {
				t.Fatalf("got %+v", got)
			}
			for i, r := range got.Channels {
				want := tt.want[i]
				if r.Channel != want.Channel || r.Target != want.Target || r.Delivered != want.Delivered || (r.Delivered != (r.Error == "")) {
					t.Errorf("channel %d: %+v, want %+v", i, r, want)
				}
			}
		})
	}
	if s, _ := w.mailsTo(t, "alice@example.com"); len(s) != 1 || s[0] != "[Fleetvault] Test notification" {
		t.Fatalf("alice's test mail: %q", s)
	}
}
