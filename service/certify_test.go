package service

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/catalog/catalogtest"
	"github.com/fleetvault/fleetvault/notify"
	"github.com/fleetvault/fleetvault/service/servicetest"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// certWorld is an installation with three devices: crit1 (critical) and
// plain1 (non-critical) of alice, bob1 of bob, each with one backup at t0
// in alice's or bob's backup group.
type certWorld struct {
	cat    *catalog.Catalog
	now    time.Time
	sink   *servicetest.Events
	pieces map[string]catalog.Piece // by device
}

var certT0 = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

func newCertWorld(t *testing.T) *certWorld {
	t.Helper()
	c := catalogtest.New(t)
	w := &certWorld{cat: c, now: certT0, sink: &servicetest.Events{}, pieces: map[string]catalog.Piece{}}
	ctx := context.Background()
	for _, u := range []catalog.User{{Name: "alice", Role: RoleOwner}, {Name: "bob", Role: RoleOwner}, {Name: "oscar", Role: RoleOperator}} {
		if err := c.CreateUser(u); err != nil {
			t.Fatal(err)
		}
	}
	devs := []catalog.Device{
		{ID: "crit1", Owner: "alice", Category: catalog.CategoryCritical},
		{ID: "plain1", Owner: "alice"},
		{ID: "bob1", Owner: "bob", Category: catalog.CategoryNonCritical},
	}
	if err := c.PutDevices(ctx, devs); err != nil {
		t.Fatal(err)
	}
	for _, g := range []catalog.Group{{Name: "bk-alice", Kind: catalog.GroupBackup, Owner: "alice"}, {Name: "bk-bob", Kind: catalog.GroupBackup, Owner: "bob"}} {
		if err := c.CreateGroup(g.Name, g); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range devs {
		group := "bk-alice"
		if d.Owner == "bob" {
			group = "bk-bob"
		}
		ps, err := c.Ingest(ctx, []catalog.NewPiece{{Client: d.ID, Name: "settings", Type: catalog.TypeSettings, Group: group, Owner: d.Owner,
			Location: "mqtt://" + d.ID, Time: certT0, Tag: tagmatch.Tag{{Key: "model", Value: "xyz"}}, Content: []byte("settings of " + d.ID)}})
		if err != nil {
			t.Fatal(err)
		}
		w.pieces[d.ID] = ps[0]
	}
	return w
}

// service is a fresh Service over the world's catalog (a restart of serve).
func (w *certWorld) service() *Service {
	return New(Options{Catalog: w.cat, Events: w.sink, Now: func() time.Time { return w.now }})
}

func as(user, role string) Identity { return Identity{User: user, Role: role, Addr: "test"} }

// TestCertificationLifecycle drives a simulated month with a fake clock,
// sweeping hourly (twice at each hour, to prove idempotence) and restarting
// the service halfway: a critical certification lapses after the policy's
// N days with one CertificationLapsed to its owner; reminders come every M
// days while unknown, exactly as many as the month holds, none doubled; a
// refusal tells the owner at once.
func TestCertificationLifecycle(t *testing.T) {
	w := newCertWorld(t)
	ctx := context.Background()
	svc := w.service()
	admin := svc.As(as("root", RoleAdmin))
	for _, p := range []apiclient.CertPolicy{{Category: catalog.CategoryCritical, LapseDays: 10, RemindDays: 3}, {Category: catalog.CategoryNonCritical, RemindDays: 7}} {
		if _, err := admin.SetCertificationPolicy(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	w.now = certT0.Add(time.Hour)
	crit := w.pieces["crit1"]
	c, err := svc.As(as("alice", RoleOwner)).Certify(ctx, crit.ID, apiclient.CertifyRequest{State: catalog.CertCertified, Note: "twin restore fine"})
	if err != nil {
		t.Fatal(err)
	}
	if c.State != catalog.CertCertified || c.By != "alice" || c.LapsesAt == nil || !c.LapsesAt.Equal(w.now.Add(10*24*time.Hour)) {
		t.Fatalf("certified: %+v", c)
	}
	if ev := w.sink.Take(); len(ev) != 0 {
		t.Fatalf("certifying emitted %v", ev)
	}

	counts := map[string]map[notify.Kind]int{} // device -> kind -> events
	var lapsedAt time.Time
	for h := 0; h <= 30*24; h++ {
		w.now = certT0.Add(time.Duration(h) * time.Hour)
		if h == 15*24 {
			svc = w.service() // a restart: everything the sweep knows is in the catalog
		}
		for round := 0; round < 2; round++ {
			rep, err := svc.CertificationSweep(ctx, w.now)
			if err != nil {
				t.Fatal(err)
			}
			if round == 1 && len(rep.Lapsed)+len(rep.Reminded) > 0 {
				t.Fatalf("hour %d: a second sweep at the same time did %+v", h, rep)
			}
		}
		for _, e := range w.sink.Take() {
			if counts[e.Device] == nil {
				counts[e.Device] = map[notify.Kind]int{}
			}
			counts[e.Device][e.Kind]++
			wantOwner := map[string]string{"crit1": "alice", "plain1": "alice", "bob1": "bob"}[e.Device]
			if e.Owner != wantOwner || e.Backup != w.pieces[e.Device].ID || !e.Time.Equal(w.now) {
				t.Errorf("hour %d: event %+v: want owner %s, backup %s", h, e, wantOwner, w.pieces[e.Device].ID)
			}
			if e.Kind == notify.CertificationLapsed {
				lapsedAt = w.now
				if e.By != "alice" || !e.Since.Equal(certT0.Add(time.Hour)) {
					t.Errorf("lapse event %+v: want by alice, since the certification", e)
				}
			}
		}
	}
	// crit1: certified at 1h, lapses at 10 days 1h, then reminders every 3
	// days from the lapse: days 13, 16, 19, 22, 25, 28 (and 1h): 6.
	// plain1 and bob1: unknown since t0, reminders every 7 days: 4.
	want := map[string]map[notify.Kind]int{
		"crit1":  {notify.CertificationLapsed: 1, notify.CertificationReminder: 6},
		"plain1": {notify.CertificationReminder: 4},
		"bob1":   {notify.CertificationReminder: 4},
	}
	for dev, kinds := range want {
		for k, n := range kinds {
			if counts[dev][k] != n {
				t.Errorf("%s: %d %s events, want %d (all: %v)", dev, counts[dev][k], k, n, counts[dev])
			}
		}
		if len(counts[dev]) != len(kinds) {
			t.Errorf("%s: events %v, want %v", dev, counts[dev], kinds)
		}
	}
	if wantLapse := certT0.Add(10*24*time.Hour + time.Hour); !lapsedAt.Equal(wantLapse) {
		t.Errorf("lapsed at %v, want %v", lapsedAt, wantLapse)
	}
	got, err := svc.As(as("alice", RoleOwner)).Certification(ctx, crit.ID)
	if err != nil || got.State != catalog.CertUnknown || got.By != sweepUser {
		t.Fatalf("after the lapse: %+v %v", got, err)
	}

	// A refusal tells the owner at once, even when an admin refuses.
	plain := w.pieces["plain1"]
	if _, err := admin.Certify(ctx, plain.ID, apiclient.CertifyRequest{State: catalog.CertNotCertified, Note: "fan setting lost"}); err != nil {
		t.Fatal(err)
	}
	ev := w.sink.Take()
	if len(ev) != 1 || ev[0].Kind != notify.NotCertified || ev[0].Owner != "alice" || ev[0].By != "root" || ev[0].Note != "fan setting lost" || ev[0].Backup != plain.ID {
		t.Fatalf("not-certified events: %+v", ev)
	}
	if err := ev[0].Validate(); err != nil {
		t.Errorf("not-certified event: %v", err)
	}
	g, err := svc.As(as("alice", RoleOwner)).GroupCertification(ctx, "bk-alice")
	if err != nil || g.State != catalog.CertNotCertified || g.Counts[catalog.CertNotCertified] != 1 || g.Counts[catalog.CertUnknown] != 1 {
		t.Fatalf("group: %+v %v", g, err)
	}
	audit, err := w.cat.Audit(catalog.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var history []string
	for _, e := range audit {
		if len(e.Objects) > 0 && (e.Objects[0] == crit.ID || e.Objects[0] == plain.ID) {
			history = append(history, e.User+" "+e.Action)
		}
	}
	if len(history) != 3 || history[0] != "alice backup.certify" || history[1] != "fleetvault backup.certification-lapse" || history[2] != "root backup.certify" {
		t.Errorf("audit history %v", history)
	}
}

// TestCertificationAuthorization: an owner sees and certifies only their
// backups (another's is "not found"); an operator may not certify; bad
// states and notes are named; a test restore needs the server and a
// test-bench device.
func TestCertificationAuthorization(t *testing.T) {
	w := newCertWorld(t)
	ctx := context.Background()
	svc := w.service()
	bobs := w.pieces["bob1"].ID
	alice := svc.As(as("alice", RoleOwner))
	yes := apiclient.CertifyRequest{State: catalog.CertCertified}
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"owner cannot see another's", func() error { _, err := alice.Certification(ctx, bobs); return err }, ErrNotFound},
		{"owner cannot certify another's", func() error { _, err := alice.Certify(ctx, bobs, yes); return err }, ErrNotFound},
		{"owner cannot test-restore another's", func() error {
			_, err := alice.TestRestore(ctx, bobs, apiclient.TestRestoreRequest{Into: "twin"})
			return err
		}, ErrNotFound},
		{"owner cannot read another's group", func() error { _, err := alice.GroupCertification(ctx, "bk-bob"); return err }, ErrNotFound},
		{"operator may not certify", func() error {
			_, err := svc.As(as("oscar", RoleOperator)).Certify(ctx, bobs, yes)
			return err
		}, ErrForbidden},
		{"unknown state", func() error {
			_, err := svc.As(as("bob", RoleOwner)).Certify(ctx, bobs, apiclient.CertifyRequest{State: "fine"})
			return err
		}, ErrInvalid},
		{"owner may not set policies", func() error {
			_, err := alice.SetCertificationPolicy(ctx, apiclient.CertPolicy{Category: catalog.CategoryCritical, LapseDays: 1})
			return err
		}, ErrForbidden},
		{"unknown category", func() error {
			_, err := svc.As(as("root", RoleAdmin)).SetCertificationPolicy(ctx, apiclient.CertPolicy{Category: "vital"})
			return err
		}, ErrInvalid},
		{"test restore needs a test-bench device", func() error {
			_, err := svc.As(as("bob", RoleOwner)).TestRestore(ctx, bobs, apiclient.TestRestoreRequest{Into: "bob1"})
			return err
		}, ErrConflict},
		{"test restore into a twin needs the server", func() error {
			_, err := svc.As(as("bob", RoleOwner)).TestRestore(ctx, bobs, apiclient.TestRestoreRequest{Into: "twin"})
			return err
		}, ErrUnprocessable},
		{"operator may not mark another's test bench", func() error {
			tb := true
			_, err := svc.As(as("oscar", RoleOperator)).UpdateDevice(ctx, "bob1", apiclient.DeviceUpdate{TestBench: &tb})
			return err
		}, ErrForbidden},
		{"owner may not change a category", func() error {
			c := catalog.CategoryCritical
			_, err := svc.As(as("bob", RoleOwner)).UpdateDevice(ctx, "bob1", apiclient.DeviceUpdate{Category: &c})
			return err
		}, ErrForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	if rec, _ := w.cat.Certification(bobs); rec.State != catalog.CertUnknown {
		t.Errorf("refused calls changed bob's certification: %+v", rec)
	}
	if ls, err := alice.Certifications(ctx, apiclient.CertificationQuery{}); err != nil || len(ls) != 2 {
		t.Errorf("alice lists %d certifications, want her 2: %v", len(ls), err)
	}
	tb := true
	d, err := svc.As(as("bob", RoleOwner)).UpdateDevice(ctx, "bob1", apiclient.DeviceUpdate{TestBench: &tb})
	if err != nil || d.Optional[catalog.OptionalTestBench] != "true" {
		t.Fatalf("owner marks own test bench: %+v %v", d, err)
	}
	if _, err := svc.As(as("bob", RoleOwner)).TestRestore(ctx, bobs, apiclient.TestRestoreRequest{Into: "bob1"}); !errors.Is(err, ErrUnprocessable) {
		t.Fatalf("test restore in direct mode: %v, want ErrUnprocessable", err)
	}
}
