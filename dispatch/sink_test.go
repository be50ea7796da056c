package dispatch

import (
	"context"
	"crypto/tls"
	"fmt"
	"mime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/catalog/catalogtest"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/notify"
	"github.com/fleetvault/fleetvault/notify/notifytest"
)

// clock is a fake clock the tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

// startSink runs a sink over c that mails through srv, until the test ends
// or stop is called.
func startSink(t *testing.T, c *catalog.Catalog, srv *notifytest.SMTPServer, now func() time.Time) (s *Sink, stop func()) {
	t.Helper()
	s, err := New(Options{Catalog: c, DigestHour: 7, Tick: 2 * time.Millisecond, Now: now, Attempts: 2, BaseDelay: time.Millisecond,
		Email: &notify.EmailOptions{Host: "127.0.0.1", Port: srv.Addr.Port, Username: notifytest.User, Password: notifytest.Password,
			From: "fleetvault@example.com", TLSConfig: &tls.Config{RootCAs: srv.Roots}, Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { s.Close(); cancel(); <-done }) }
	t.Cleanup(stop)
	return s, stop
}

func addUser(t *testing.T, c *catalog.Catalog, p catalog.NotifyPrefs) {
	t.Helper()
	if err := c.CreateUser(catalog.User{Name: p.User, Role: catalog.UserOwner}); err != nil {
		t.Fatal(err)
	}
	if err := c.PutNotifyPrefs(p); err != nil {
		t.Fatal(err)
	}
}

func subjects(t *testing.T, srv *notifytest.SMTPServer, to string) []string {
	t.Helper()
	var out []string
	dec := new(mime.WordDecoder)
	for _, m := range srv.Received() {
		if len(m.To) == 1 && m.To[0] == to {
			s, err := dec.DecodeHeader(m.Header.Get("Subject"))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
	}
	return out
}

// TestDigest: a digest user's events of a day wait in the catalog, survive
// a restart of the sink, and arrive as one message at the digest hour of
// the fake clock; a user without digest is told at once.
func TestDigest(t *testing.T) {
	c := catalogtest.New(t)
	srv := notifytest.StartSMTP(t)
	addUser(t, c, catalog.NotifyPrefs{User: "alice", Email: "alice@example.com", Mode: catalog.NotifyOnFailure, Digest: true})
	addUser(t, c, catalog.NotifyPrefs{User: "bob", Email: "bob@example.com", Mode: catalog.NotifyOnFailure})
	if err := c.PutDevices(context.Background(), []catalog.Device{{ID: "thermo1", Owner: "alice"}, {ID: "lock1", Owner: "bob"}}); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 5, 4, 0, 0, 0, 0, time.UTC)
	clk := &clock{now: day.Add(time.Hour)}
	s, stop := startSink(t, c, srv, clk.Now)
	events := []notify.Event{
		{Kind: notify.RPOMissed, Time: day.Add(time.Hour), Device: "thermo1", RPO: 26 * time.Hour},
		{Kind: notify.NotCertified, Time: day.Add(2 * time.Hour), Backup: "p-1", Device: "thermo1", By: "alice"},
		{Kind: notify.CertificationReminder, Time: day.Add(3 * time.Hour), Backup: "p-2", Device: "thermo1", Owner: "alice"},
		{Kind: notify.RPOMissed, Time: day.Add(4 * time.Hour), Device: "lock1", RPO: time.Hour},
	}
	for _, e := range events {
		s.Event(e)
	}
	notifytest.WaitFor(t, 10*time.Second, func() bool {
		b, _ := c.PendingDigests()
		return len(b) == 1 && len(b[0].Events) == 3 && len(subjects(t, srv, "bob@example.com")) == 1
	})
	stop() // a restart before the digest hour loses nothing
	if got := subjects(t, srv, "alice@example.com"); len(got) != 0 {
		t.Fatalf("alice got %q before the digest hour", got)
	}
	clk.set(day.Add(6 * time.Hour))
	startSink(t, c, srv, clk.Now)
	clk.set(day.Add(7*time.Hour + time.Second))
	notifytest.WaitFor(t, 10*time.Second, func() bool { return len(subjects(t, srv, "alice@example.com")) > 0 })
	var body string
	for _, m := range srv.Received() {
		if m.To[0] == "alice@example.com" {
			body = m.Body
		}
	}
	if got := subjects(t, srv, "alice@example.com"); len(got) != 1 || got[0] != "[Fleetvault] Daily digest: 3 events" {
		t.Fatalf("alice got %q", got)
	}
	for _, want := range []string{"RPO missed: thermo1", "not certified", "p-2"} {
		if !strings.Contains(strings.ToLower(body), strings.ToLower(want)) {
			t.Errorf("digest lacks %q:\n%s", want, body)
		}
	}
	// The digest's events are forgotten once it is queued.
	notifytest.WaitFor(t, 10*time.Second, func() bool { b, _ := c.PendingDigests(); return len(b) == 0 })
	if got := subjects(t, srv, "bob@example.com"); len(got) != 1 || got[0] != "[Fleetvault] RPO missed: lock1" {
		t.Fatalf("bob got %q", got)
	}
	var misses int
	_ = c.History(time.Time{}, time.Time{}, func(h catalog.HistoryRecord) error { misses += h.RPOMisses; return nil })
	if misses != 2 {
		t.Fatalf("%d RPO misses in the history, want 2", misses)
	}
}

// TestJobOfManyDevices: a job over 10,000 devices of three owners tells
// each owner once, and the admins once for the failed devices without an
// owner; its history has one record per device.
func TestJobOfManyDevices(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 2000
	}
	c := catalogtest.New(t)
	srv := notifytest.StartSMTP(t)
	for _, u := range []string{"alice", "bob", "carol"} {
		addUser(t, c, catalog.NotifyPrefs{User: u, Email: u + "@example.com", Mode: catalog.NotifyOnFailure})
	}
	if err := c.CreateUser(catalog.User{Name: "root", Role: catalog.UserAdmin}); err != nil {
		t.Fatal(err)
	}
	if err := c.PutNotifyPrefs(catalog.NotifyPrefs{User: "root", Email: "root@example.com", Mode: catalog.NotifyOnFailure}); err != nil {
		t.Fatal(err)
	}
	owners := []string{"alice", "bob", "carol", ""}
	devs := make([]catalog.Device, n)
	outs := make([]grouprestore.DeviceOutcome, n)
	start := time.Date(2026, 5, 4, 3, 0, 0, 0, time.UTC)
	for i := range devs {
		devs[i] = catalog.Device{ID: fmt.Sprintf("dev%05d", i), Owner: owners[i%4]}
		outs[i] = grouprestore.DeviceOutcome{Device: devs[i].ID, State: grouprestore.Offline, Time: start.Add(time.Minute).UnixMilli()}
	}
	if err := c.PutDevices(context.Background(), devs); err != nil {
		t.Fatal(err)
	}
	s, _ := startSink(t, c, srv, time.Now)
	s.jobEnded(grouprestore.Spec{Kind: grouprestore.KindBackup, Source: "all", Target: "nightly"},
		grouprestore.Progress{Job: "job-1", State: grouprestore.JobDone, Started: start, Total: n}, outs)
	notifytest.WaitFor(t, 20*time.Second, func() bool { return s.Stats().Sent+s.Stats().Undeliverable >= 4 })
	for _, u := range []string{"alice", "bob", "carol", "root"} {
		want := "[Fleetvault] Job job-1 failed: nightly"
		if got := subjects(t, srv, u+"@example.com"); len(got) != 1 || got[0] != want {
			t.Errorf("%s got %q, want one %q", u, got, want)
		}
	}
	records := 0
	_ = c.History(time.Time{}, time.Time{}, func(h catalog.HistoryRecord) error { records += h.Attempts; return nil })
	if records != n {
		t.Fatalf("history: %d attempts, want %d", records, n)
	}
}
