package bui_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/bui"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/devicesim"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/httpguard"
	"github.com/fleetvault/fleetvault/scenario"
	"github.com/fleetvault/fleetvault/service"
)

// The test fleet: a model house (North and South references), alice's six
// new homes and her two sheds, and bob's two homes.
const testFleet = `
name: bui-test
seed: 7
types:
  - name: climate
    transport: mqtt
    tag: {manufacturer: Acme Corp., product: climate control, model: xyz, zone: "{zone}"}
    settings:
      factory: {name: "{id}", setpoint_c: 20, mode: auto}
      reference:
        - when: {zone: North}
          set: {setpoint_c: 21.5, mode: heat}
        - when: {zone: South}
          set: {setpoint_c: 24, mode: cool}
groups:
  - {name: model-north, reference: true, vars: {zone: North}, devices: [{type: climate}]}
  - {name: model-south, reference: true, vars: {zone: South}, devices: [{type: climate}]}
  - name: new-homes
    sites: 6
    site: "home{n:02}"
    vars: {zone: {choice: [North, South]}}
    devices: [{type: climate}]
  - name: sheds
    sites: 2
    site: "shed{n:02}"
    vars: {zone: North}
    devices: [{type: climate}]
  - name: bob-homes
    sites: 2
    site: "bob{n:02}"
    vars: {zone: South}
    devices: [{type: climate}]
`

// Passwords of the test's people.
const (
	adminPassword = "admin-password-1"
	alicePassword = "alice-password-1"
	bobPassword   = "bob-password-123"
)

// world is the server and fleet the browser tests share.
type world struct {
	w    *scenario.World
	ts   *httptest.Server
	base string
	svc  *service.Service
}

var (
	worldOnce sync.Once
	theWorld  *world
	worldErr  error
)

// testWorld starts, once for the package, a server with its embedded broker
// and the test fleet, its HTTP handler (API and BUI) on a real listener;
// alice owns new-homes, sheds and the reference backups, bob owns bob-homes.
func testWorld(t *testing.T) *world {
	t.Helper()
	worldOnce.Do(func() { theWorld, worldErr = startWorld() })
	if worldErr != nil {
		t.Fatalf("start the test world: %v", worldErr)
	}
	return theWorld
}

func closeWorld() {
	if theWorld != nil {
		theWorld.ts.Close()
		theWorld.w.Close()
	}
}

func startWorld() (*world, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	spec, err := devicesim.Parse("bui-test.yaml", []byte(testFleet))
	if err != nil {
		return nil, err
	}
	w, err := scenario.Start(ctx, scenario.Options{Fleet: spec})
	if err != nil {
		return nil, err
	}
	out := &world{w: w, svc: w.Server.Service}
	out.ts = httptest.NewServer(w.Server.Handler())
	out.base = out.ts.URL
	if err := out.setUp(ctx); err != nil {
		closeWorldOf(out)
		return nil, err
	}
	return out, nil
}

func closeWorldOf(w *world) {
	w.ts.Close()
	w.w.Close()
}

// setUp backs up the references and alice's homes, and adds the people.
func (w *world) setUp(ctx context.Context) error {
	if _, err := w.w.BackupReferences(ctx); err != nil {
		return err
	}
	admin := w.svc.As(service.Identity{User: "root", Role: service.RoleAdmin, Addr: "test"})
	for _, u := range []struct{ name, role, pw string }{
		{"admin", service.RoleAdmin, adminPassword}, {"alice", service.RoleOwner, alicePassword}, {"bob", service.RoleOwner, bobPassword},
	} {
		if err := admin.AddUser(ctx, u.name, u.role, u.pw); err != nil {
			return err
		}
	}
	for _, g := range []string{w.w.BackupGroup, "homes-nightly", "bob-nightly"} {
		if _, err := admin.CreateGroup(ctx, apiclient.NewGroup{Name: g, Kind: catalog.GroupBackup}); err != nil {
			return err
		}
	}
	if err := admin.AssignOwner(ctx, "alice", catalog.Assignment{Groups: []string{"new-homes", "sheds"}, BackupGroups: []string{w.w.BackupGroup}}); err != nil {
		return err
	}
	if err := admin.AssignOwner(ctx, "bob", catalog.Assignment{Groups: []string{"bob-homes"}, BackupGroups: []string{"bob-nightly"}}); err != nil {
		return err
	}
	// alice's homes are backed up nightly; her sheds never were.
	j, err := admin.StartJob(ctx, apiclient.NewJob{Kind: "backup", Source: "new-homes", Target: "homes-nightly"})
	if err != nil {
		return err
	}
	if p, err := w.wait(ctx, j.ID); err != nil || p.Counts[grouprestore.BackedUp] != p.Total {
		return fmt.Errorf("back up new-homes: %v %v", p.Counts, err)
	}
	if err := admin.AssignOwner(ctx, "alice", catalog.Assignment{BackupGroups: []string{"homes-nightly"}}); err != nil {
		return err
	}
	_, err = admin.AddSchedule(ctx, apiclient.NewSchedule{Name: "homes-nightly", DeviceGroup: "new-homes", BackupGroup: "homes-nightly", Cron: "0 3 * * *", RPO: "26h"})
	return err
}

// wait waits for a job to end.
func (w *world) wait(ctx context.Context, id string) (grouprestore.Progress, error) {
	j, err := w.w.Server.Engine.Job(id)
	if err != nil {
		return grouprestore.Progress{}, err
	}
	return j.Wait(ctx)
}

// as is the service as user (an existing user of the world).
func (w *world) as(t *testing.T, user string) *service.Session {
	t.Helper()
	id, err := w.svc.Identify(user, "test")
	if err != nil {
		t.Fatal(err)
	}
	return w.svc.As(id)
}

// throttledUI serves a second BUI over the world's service whose throttle
// allows failures failed log-ons per address, so that test does not lock
// the other tests' address out; it returns its URL.
func throttledUI(t *testing.T, w *world, failures int) string {
	t.Helper()
	ui, err := bui.New(bui.Options{Service: w.svc, Throttle: httpguard.NewThrottle(httpguard.ThrottleOptions{Failures: failures, Refill: time.Hour})})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(ui.Handler())
	t.Cleanup(ts.Close)
	return ts.URL
}
