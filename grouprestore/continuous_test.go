package grouprestore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/identifiers"
)

// growingDirectory is a device group that grows while a job runs.
type growingDirectory struct {
	mu      sync.Mutex
	members []Target
}

func (d *growingDirectory) Members(context.Context, string) ([]Target, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Target(nil), d.members...), nil
}

// addHome adds a device to the fleet and the group, online or not.
func addHome(f *fleet, dir *growingDirectory, id string, online bool) *testDevice {
	d := &testDevice{tag: climate("North"), settings: factory}
	f.tr.mu.Lock()
	f.devices[id] = d
	f.tr.handlers[id] = agent.NewHandler(id, d, agent.HandlerOptions{})
	f.tr.offline[id] = !online
	f.tr.mu.Unlock()
	dir.mu.Lock()
	dir.members = append(dir.members, Target{ID: id, Ident: identifiers.ID{Scheme: "mqtt", Address: id}})
	dir.mu.Unlock()
	return d
}

func TestContinuousRestore(t *testing.T) {
	f := modelHouse(t, 0)
	dir := &growingDirectory{}
	var devs sync.Map // id -> *testDevice
	for i := 0; i < 10; i++ {
		id := fmt.Sprintf("early%02d", i)
		devs.Store(id, addHome(f, dir, id, true))
	}
	var late []string
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("late%02d", i)
		devs.Store(id, addHome(f, dir, id, false))
		late = append(late, id)
	}
	open := func() *Engine {
		e, err := New(Options{JournalPath: f.journal, CreateJournal: true, Catalog: f.cat, Directory: dir, Transports: map[string]agent.Transport{"mqtt": f.tr}})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	e := open()
	spec := Spec{Kind: KindRestore, Source: "model-house", Target: "homes", Continuous: true, Rescan: 20 * time.Millisecond,
		Rollout: Rollout{Timeout: 50 * time.Millisecond, Retries: -1, Rate: 2000}}
	j, err := e.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	restored := func(j *Job) int { return j.Progress().Counts[Restored] }
	checkFor(t, 20*time.Second, func() bool { return restored(j) == 10 && j.Progress().Counts[Offline] == 20 }, "the early devices restored, the late ones offline")

	t.Run("members added later are restored", func(t *testing.T) {
		for i := 0; i < 100; i++ {
			id := fmt.Sprintf("added%03d", i)
			devs.Store(id, addHome(f, dir, id, true))
		}
		checkFor(t, 20*time.Second, func() bool { return restored(j) == 110 }, "110 restored")
	})
	t.Run("devices coming online later are restored", func(t *testing.T) {
		for _, id := range late {
			f.tr.setOffline(id, false)
		}
		checkFor(t, 20*time.Second, func() bool { return restored(j) == 130 }, "130 restored")
		if p := j.Progress(); p.State != JobRunning || p.Total != 130 {
			t.Fatalf("a continuous restore stays running: %+v", p)
		}
	})
	t.Run("it survives a restart and goes on", func(t *testing.T) {
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		for i := 100; i < 200; i++ { // added while the server is down
			id := fmt.Sprintf("added%03d", i)
			devs.Store(id, addHome(f, dir, id, true))
		}
		e = open()
		jobs, err := e.Resume(context.Background())
		if err != nil || len(jobs) != 1 {
			t.Fatalf("resume: %v, %v", jobs, err)
		}
		j = jobs[0]
		checkFor(t, 20*time.Second, func() bool { return restored(j) == 230 }, "230 restored after the restart")
		recs, err := e.Jobs()
		if err != nil || recs[0].Total != 230 || recs[0].State != JobRunning {
			t.Fatalf("jobs list: %+v, %v", recs, err)
		}
	})
	t.Run("cancel ends it; every device was written exactly once", func(t *testing.T) {
		j.Cancel()
		if p := wait(t, j); p.State != JobCancelled || p.Counts[Restored] != 230 {
			t.Fatalf("after cancel: %+v", p)
		}
		devs.Range(func(k, v any) bool {
			if d := v.(*testDevice); len(d.applied) != 1 {
				t.Errorf("%s was written %d times", k, len(d.applied))
			}
			return true
		})
	})
	e.Close()
}
