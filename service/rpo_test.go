package service_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/notify"
	"github.com/fleetvault/fleetvault/service"
)

// events is an EventSink that keeps the devices it is told missed an RPO.
type events struct {
	mu     sync.Mutex
	missed []string
}

func (e *events) Event(ev notify.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ev.Kind == notify.RPOMissed {
		e.missed = append(e.missed, ev.Device)
	}
}

func (e *events) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.missed
	e.missed = nil
	slices.Sort(out)
	return out
}

// TestCheckRPOTellsOnce: a device that misses its RPO is told once, also
// across a restart (a new Service on the same catalog), and again only after
// it met the RPO again; a device never backed up is unknown and not told.
func TestCheckRPOTellsOnce(t *testing.T) {
	mbr, err := catalog.Init(t.TempDir(), catalog.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := catalog.Open(mbr, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	t0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	if err := c.PutDevices(ctx, []catalog.Device{{ID: "d1"}, {ID: "d2"}, {ID: "d3"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateGroup("homes", catalog.Group{Kind: catalog.GroupDevices}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddMembers("homes", []string{"d1", "d2", "d3"}); err != nil {
		t.Fatal(err)
	}
	if err := c.PutSchedule(catalog.Schedule{Name: "hourly", DeviceGroup: "homes", BackupGroup: "bk", Cron: "@hourly", RPO: time.Hour}); err != nil {
		t.Fatal(err)
	}
	backup := func(device string, at time.Time) {
		t.Helper()
		if _, err := c.Ingest(ctx, []catalog.NewPiece{{Client: device, Name: "settings", Group: "bk", Time: at, Content: []byte(device + at.String())}}); err != nil {
			t.Fatal(err)
		}
	}
	backup("d1", t0)
	backup("d2", t0)
	now := t0
	sink := &events{}
	newService := func() *service.Service {
		return service.New(service.Options{Catalog: c, Events: sink, Now: func() time.Time { return now }})
	}
	svc := newService()
	check := func(t *testing.T, wantTold []string, wantStates map[string]string) {
		t.Helper()
		st, err := svc.CheckRPO(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, s := range st {
			got[s.Device] = s.State
		}
		for d, want := range wantStates {
			if got[d] != want {
				t.Fatalf("at %v: %s is %s, want %s (%v)", now, d, got[d], want, got)
			}
		}
		if told := sink.take(); !slices.Equal(told, wantTold) {
			t.Fatalf("at %v: told %v, want %v", now, told, wantTold)
		}
	}
	steps := []struct {
		name   string
		do     func()
		told   []string
		states map[string]string
	}{
		{"within the RPO", func() { now = t0.Add(30 * time.Minute) }, nil,
			map[string]string{"d1": apiclient.RPOMet, "d2": apiclient.RPOMet, "d3": apiclient.RPOUnknown}},
		{"past it", func() { now = t0.Add(2 * time.Hour) }, []string{"d1", "d2"},
			map[string]string{"d1": apiclient.RPOMissed, "d2": apiclient.RPOMissed, "d3": apiclient.RPOUnknown}},
		{"still missed", func() { now = t0.Add(3 * time.Hour) }, nil, map[string]string{"d1": apiclient.RPOMissed}},
		{"after a restart", func() { svc = newService() }, nil, map[string]string{"d2": apiclient.RPOMissed}},
		{"d1 backed up", func() { backup("d1", now) }, nil, map[string]string{"d1": apiclient.RPOMet, "d2": apiclient.RPOMissed}},
		{"d1 misses again", func() { now = now.Add(2 * time.Hour) }, []string{"d1"}, map[string]string{"d1": apiclient.RPOMissed}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			s.do()
			check(t, s.told, s.states)
		})
	}
}
