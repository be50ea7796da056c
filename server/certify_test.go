package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/devicesim"
	"github.com/fleetvault/fleetvault/httpguard"
	"github.com/fleetvault/fleetvault/notify"
	"github.com/fleetvault/fleetvault/schedule/scheduletest"
	"github.com/fleetvault/fleetvault/service"
	"github.com/fleetvault/fleetvault/service/servicetest"
)

// certFleet: a model house's climate control (critical) and two homes'.
const certFleet = `
name: cert
seed: 3
types:
  - name: climate
    transport: mqtt
    tag: {manufacturer: Acme Corp., product: climate control, model: xyz, zone: "{zone}"}
    settings:
      factory: {name: "{id}", setpoint_c: 20, mode: auto, schedule: {weekday: [{at: "06:30", setpoint_c: 20}]}}
      reference:
        - when: {zone: North}
          set: {setpoint_c: 21.5, mode: heat}
groups:
  - name: model
    reference: true
    site: model-north
    vars: {zone: North}
    devices: [{type: climate}]
  - name: homes
    sites: 2
    site: "home{n}"
    vars: {zone: North}
    devices: [{type: climate}]
`

// TestCertificationEndToEnd runs a real server (embedded broker, engine,
// HTTP API) with a simulated fleet and a fake clock: a test restore into a
// twin records its evidence and touches no device of the fleet (ground
// truth: no request reached them); the owner certifies; the critical
// certification lapses after the policy's days and reminders follow, from
// the server's own sweep loop; a refusal tells the owner; and the metrics
// count the states.
func TestCertificationEndToEnd(t *testing.T) {
	clock := scheduletest.NewClock(time.Now().UTC().Truncate(time.Second))
	sink := &servicetest.Events{}
	mbr, err := catalog.Init(t.TempDir(), catalog.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(context.Background(), Options{MBR: mbr, MQTTAddr: "127.0.0.1:0", CoAPListen: "127.0.0.1:0",
		HTTPThrottle: httpguard.ThrottleOptions{Failures: 1 << 20}, Events: sink, Clock: clock, SweepEvery: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	if err := s.Catalog.CreateUser(catalog.User{Name: "alice", Role: catalog.UserOwner}); err != nil {
		t.Fatal(err)
	}
	adminToken, _ := s.Tokens().Create("admin")
	aliceToken, _ := s.Tokens().CreateFor("alice-token", "alice")
	admin, alice := apiclient.NewClient(ts.URL, adminToken), apiclient.NewClient(ts.URL, aliceToken)

	fleet := startCertFleet(t, ctx, s)
	bj, err := admin.StartJob(ctx, apiclient.NewJob{Kind: "backup", Source: "all", Target: "bk"})
	if err != nil {
		t.Fatal(err)
	}
	e := &apiEnv{s: s, ts: ts, c: admin, ctx: ctx}
	if j := e.waitJob(t, bj.ID); j.Progress.Counts["backed-up"] != 3 {
		t.Fatalf("backup job: %+v", j.Progress)
	}
	backups, err := alice.Backups(ctx, apiclient.BackupQuery{Group: "bk"})
	if err != nil || len(backups) != 3 {
		t.Fatalf("alice's backups: %v %v", backups, err)
	}
	ids := map[string]string{}
	for _, b := range backups {
		ids[b.Client] = b.ID
		if b.Certification == nil || b.Certification.State != catalog.CertUnknown {
			t.Errorf("backup %s lists certification %+v, want unknown", b.ID, b.Certification)
		}
	}
	model := ids["model-north-climate"]
	if _, err := admin.SetCertificationPolicy(ctx, apiclient.CertPolicy{Category: catalog.CategoryCritical, LapseDays: 3, RemindDays: 2}); err != nil {
		t.Fatal(err)
	}

	before := fleetTruth(fleet)
	cert, err := alice.TestRestore(ctx, model, apiclient.TestRestoreRequest{Into: "twin"})
	if err != nil {
		t.Fatal(err)
	}
	ev := cert.Evidence
	if ev == nil || !ev.Verified || !ev.ReadBack || ev.Job == "" || ev.Error != "" || ev.Device != service.TwinID(model) || ev.By != "alice" || ev.RTOMillis < 0 {
		t.Fatalf("evidence %+v", ev)
	}
	if cert.State != catalog.CertUnknown {
		t.Fatalf("a test restore certified: %+v", cert)
	}
	b, err := alice.Backup(ctx, model)
	if err != nil {
		t.Fatal(err)
	}
	var twinSettings any
	if err := json.Unmarshal(ev.Settings, &twinSettings); err != nil || !reflect.DeepEqual(twinSettings, b.Settings) {
		t.Fatalf("the twin holds %s (%v), the backup %v", ev.Settings, err, b.Settings)
	}
	if after := fleetTruth(fleet); !reflect.DeepEqual(before, after) {
		t.Fatalf("a test restore into a twin reached the fleet: before %+v, after %+v", before, after)
	}
	if _, err := s.Catalog.Device(service.TwinID(model)); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("twin still registered: %v", err)
	}
	job, err := admin.Job(ctx, ev.Job, true)
	if err != nil || job.Device != service.TwinID(model) || job.Piece != model || job.Progress.Counts["restored"] != 1 {
		t.Fatalf("the test restore's job: %+v %v", job, err)
	}

	if _, err := alice.Certify(ctx, model, apiclient.CertifyRequest{State: catalog.CertCertified, Note: "twin matches"}); err != nil {
		t.Fatal(err)
	}
	// The sweep runs daily on the fake clock: the critical certification
	// lapses on day 3, a reminder follows on day 5.
	for day := 1; day <= 5; day++ {
		clock.Wake(t, 10*time.Second)
		clock.WaitSleeping(t, 10*time.Second) // the sweep of that day is done
		lapsed, reminded := sink.Of(notify.CertificationLapsed), sink.Of(notify.CertificationReminder)
		wantLapsed, wantReminded := 0, 0
		if day >= 3 {
			wantLapsed = 1
		}
		if day >= 5 {
			wantReminded = 1
		}
		if len(lapsed) != wantLapsed || len(reminded) != wantReminded {
			t.Fatalf("day %d: %d lapsed, %d reminders; want %d, %d", day, len(lapsed), len(reminded), wantLapsed, wantReminded)
		}
		for _, ev := range append(lapsed, reminded...) {
			if ev.Owner != "alice" || ev.Backup != model {
				t.Fatalf("day %d: event %+v", day, ev)
			}
		}
	}
	if c, err := alice.Certification(ctx, model); err != nil || c.State != catalog.CertUnknown || c.Evidence == nil {
		t.Fatalf("after the lapse: %+v %v", c, err)
	}

	if _, err := alice.Certify(ctx, ids["home1-climate"], apiclient.CertifyRequest{State: catalog.CertNotCertified, Note: "schedule lost"}); err != nil {
		t.Fatal(err)
	}
	if nc := sink.Of(notify.NotCertified); len(nc) != 1 || nc[0].Owner != "alice" || nc[0].By != "alice" || nc[0].Backup != ids["home1-climate"] {
		t.Fatalf("not-certified events %+v", nc)
	}
	clock.Wake(t, 10*time.Second)
	clock.WaitSleeping(t, 10*time.Second)
	code, metrics := e.raw(t, "GET", "/metrics", adminToken, "", "")
	if code != 200 || !strings.Contains(metrics, `fleetvault_backups_certification{state="not-certified"} 1`) ||
		!strings.Contains(metrics, `fleetvault_backups_certification{state="unknown"} 2`) {
		t.Fatalf("metrics (%d): %s", code, grepLines(metrics, "fleetvault_backups_certification"))
	}
}

// startCertFleet provisions the fleet's devices (owned by alice, the model
// house's critical) in device group "all" and backup group "bk", and starts
// them on the server's broker.
func startCertFleet(t *testing.T, ctx context.Context, s *Server) *devicesim.Fleet {
	t.Helper()
	spec, err := devicesim.Parse("cert.yaml", []byte(certFleet))
	if err != nil {
		t.Fatal(err)
	}
	fleet, err := devicesim.New(spec, devicesim.Options{BrokerURL: s.BrokerURL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fleet.Close() })
	var devs []catalog.Device
	var ids []string
	for _, info := range fleet.Devices() {
		h, err := broker.HashPassword(info.Password)
		if err != nil {
			t.Fatal(err)
		}
		d := catalog.Device{ID: info.ID, Identifier: devicesim.BaseAddress(info.Identifier), PasswordHash: h, Role: catalog.RoleDevice, Owner: "alice",
			Optional: map[string]string{catalog.OptionalTag: info.Tag.String()}}
		if info.Reference {
			d.Category = catalog.CategoryCritical
		}
		devs = append(devs, d)
		ids = append(ids, info.ID)
	}
	if err := s.Catalog.PutDevices(ctx, devs); err != nil {
		t.Fatal(err)
	}
	for _, g := range []catalog.Group{{Name: "all", Kind: catalog.GroupDevices, Owner: "alice"}, {Name: "bk", Kind: catalog.GroupBackup, Owner: "alice"}} {
		if err := s.Catalog.CreateGroup(g.Name, g); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Catalog.AddMembers("all", ids); err != nil {
		t.Fatal(err)
	}
	if err := fleet.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fleet.WaitOnline(ctx); err != nil {
		t.Fatal(err)
	}
	return fleet
}

// truth is the fleet's ground truth a test restore must not change.
type truth struct {
	Requests uint64
	Writes   map[string]int
}

func fleetTruth(f *devicesim.Fleet) truth {
	tr := truth{Requests: f.Stats().Requests, Writes: map[string]int{}}
	for _, d := range f.Devices() {
		tr.Writes[d.ID] = len(f.Device(d.ID).Log())
	}
	return tr
}
