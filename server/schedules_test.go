package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/agent/agenttest"
	"github.com/fleetvault/fleetvault/agent/mqtt"
	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/notify"
	"github.com/fleetvault/fleetvault/schedule/scheduletest"
	"github.com/fleetvault/fleetvault/service"
	"github.com/fleetvault/fleetvault/service/servicetest"
)

// t0 is where the scheduler tests' clock starts: a Monday, midnight UTC.
var t0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// wakeTimeout bounds how long (real time) a test waits for the loop to sleep:
// a run backs up a handful of devices on loopback.
const wakeTimeout = 60 * time.Second

// schedWorld is an installation served by a server driven by a test clock,
// with devices on its embedded broker that reconnect after a restart (the
// broker keeps its port).
type schedWorld struct {
	t      *testing.T
	mbr    string
	addr   string // the embedded broker's address, the same across restarts
	clk    *scheduletest.Clock
	events *servicetest.Events
	rpo    time.Duration // Options.RPOInterval
	s      *Server
	devs   map[string]*schedDevice
	pw     map[string]string
}

// schedDevice is a device served over MQTT that can be taken offline, or
// made to fail its reads (an error answered at once).
type schedDevice struct {
	*agenttest.MemDevice
	connects atomic.Int64
	failRead atomic.Bool
	stop     func()
}

var errReadFails = errors.New("test device: reading the settings fails")

func (d *schedDevice) Settings(ctx context.Context) (agent.Settings, error) {
	if d.failRead.Load() {
		return nil, errReadFails
	}
	return d.MemDevice.Settings(ctx)
}

func newSchedWorld(t *testing.T, devices []string, rpoInterval time.Duration) *schedWorld {
	t.Helper()
	mbr, err := catalog.Init(t.TempDir(), catalog.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	w := &schedWorld{t: t, mbr: mbr, addr: addr, clk: scheduletest.NewClock(t0), events: &servicetest.Events{}, rpo: rpoInterval, devs: map[string]*schedDevice{}}
	w.start()
	t.Cleanup(func() { w.s.Close() })
	w.pw = provision(t, w.s, "homes", devices)
	for i, id := range devices {
		w.devs[id] = &schedDevice{MemDevice: agenttest.NewMemDevice(tag("North"), agent.Settings{"setpoint": 20 + i})}
		w.online(id)
	}
	return w
}

// start starts the server on the installation (again).
func (w *schedWorld) start() {
	w.t.Helper()
	s, err := Start(context.Background(), Options{MBR: w.mbr, MQTTAddr: w.addr, CoAPListen: "127.0.0.1:0",
		ScheduleClock: w.clk, RPOInterval: w.rpo, Events: w.events})
	if err != nil {
		w.t.Fatal(err)
	}
	w.s = s
}

// restart closes the server, moves the clock by down, starts it again and
// waits for every online device to reconnect.
func (w *schedWorld) restart(down time.Duration) {
	w.t.Helper()
	before := map[string]int64{}
	for id, d := range w.devs {
		before[id] = d.connects.Load()
	}
	if err := w.s.Close(); err != nil {
		w.t.Fatal(err)
	}
	w.clk.Advance(down)
	n := w.clk.Sleeps()
	w.start()
	w.settled(n)
	for id, d := range w.devs {
		if d.stop != nil {
			waitFor(w.t, 30*time.Second, fmt.Sprintf("device %s reconnects", id), func() bool { return d.connects.Load() > before[id] })
		}
	}
}

// online serves device id until offline is called (or the test ends).
func (w *schedWorld) online(id string) {
	w.t.Helper()
	d := w.devs[id]
	n := d.connects.Load()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- mqtt.Serve(ctx, agent.NewHandler(id, d, agent.HandlerOptions{}), mqtt.DeviceOptions{BrokerURL: "mqtt://" + w.addr, Password: w.pw[id],
			OnConnect: func() { d.connects.Add(1) }})
	}()
	var once sync.Once
	d.stop = func() { once.Do(func() { cancel(); <-done }) }
	w.t.Cleanup(d.stop)
	waitFor(w.t, 30*time.Second, "device "+id+" connects", func() bool { return d.connects.Load() > n })
}

func (w *schedWorld) offline(id string) {
	w.devs[id].stop()
	w.devs[id].stop = nil
}

// until wakes the loop until the clock reaches end, then waits for the loop
// to sleep again (every run up to end is over).
func (w *schedWorld) until(end time.Time) {
	w.t.Helper()
	for {
		at := w.clk.WaitSleeping(w.t, wakeTimeout)
		if at.After(end) {
			return
		}
		w.clk.Wake(w.t, wakeTimeout)
	}
}

// admin is the service as an administrator.
func (w *schedWorld) admin() *service.Session {
	return w.s.Service.As(service.Identity{User: "admin", Role: service.RoleAdmin, Addr: "test"})
}

// addSchedule adds a schedule through the service and waits for the loop
// to sleep again with it.
func (w *schedWorld) addSchedule(ns apiclient.NewSchedule) {
	w.t.Helper()
	n := w.clk.Sleeps()
	if _, err := w.admin().AddSchedule(context.Background(), ns); err != nil {
		w.t.Fatal(err)
	}
	w.settled(n)
}

// settled waits until the loop has slept again since the clock counted n
// sleeps: a sleep it abandoned is no longer the one a Wake would end.
func (w *schedWorld) settled(n int) {
	w.t.Helper()
	waitFor(w.t, wakeTimeout, "the scheduler sleeps again", func() bool {
		_, sleeping := w.clk.Sleeping()
		return w.clk.Sleeps() > n && sleeping
	})
}

// backupJobs returns the backup jobs in the journal, oldest first.
func (w *schedWorld) backupJobs() []grouprestore.JobRecord {
	w.t.Helper()
	recs, err := w.s.Engine.Jobs()
	if err != nil {
		w.t.Fatal(err)
	}
	var out []grouprestore.JobRecord
	for _, r := range recs {
		if r.Spec.Kind == grouprestore.KindBackup {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b grouprestore.JobRecord) int { return int(a.Created - b.Created) })
	return out
}

// runSlots returns the slots of the schedule's runs in the audit log.
func (w *schedWorld) runSlots(name string) []string {
	w.t.Helper()
	es, err := w.s.Catalog.Audit(catalog.AuditQuery{User: "scheduler"})
	if err != nil {
		w.t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if e.Action == "schedule.run" && len(e.Objects) == 2 && e.Objects[0] == name {
			out = append(out, e.Objects[1])
		}
	}
	slices.Sort(out)
	return out
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wantSlots checks that the runs were exactly at every slot from first,
// step apart, n of them: none skipped, none doubled.
func wantSlots(t *testing.T, got []string, first time.Time, step time.Duration, n int) {
	t.Helper()
	var want []string
	for i := range n {
		want = append(want, first.Add(time.Duration(i)*step).Format(time.RFC3339))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("runs at %d slots %v,\nwant %d: %v", len(got), got, n, want)
	}
}

// TestScheduledBackups drives the scheduler of a real server with a test
// clock: a day of */15 with a restart in the middle, a week of a nightly
// schedule, and three days of downtime.
func TestScheduledBackups(t *testing.T) {
	devices := []string{"home1", "home2", "home3", "home4", "home5"}
	t.Run("a day of */15 with a restart at noon", func(t *testing.T) {
		w := newSchedWorld(t, devices, 24*time.Hour)
		w.addSchedule(apiclient.NewSchedule{Name: "often", DeviceGroup: "homes", BackupGroup: "home-backups", Cron: "*/15 * * * *"})
		w.until(t0.Add(12 * time.Hour))
		if n := len(w.backupJobs()); n != 48 {
			t.Fatalf("%d backup jobs by noon, want 48", n)
		}
		w.restart(0)
		w.until(t0.Add(24 * time.Hour))
		jobs := w.backupJobs()
		if len(jobs) != 96 {
			t.Fatalf("%d backup jobs in a day, want 96", len(jobs))
		}
		for _, j := range jobs {
			if j.Spec.Source != "homes" || j.Spec.Target != "home-backups" || j.State != grouprestore.JobDone {
				t.Fatalf("job %s: %+v", j.ID, j)
			}
		}
		wantSlots(t, w.runSlots("often"), t0.Add(15*time.Minute), 15*time.Minute, 96)
		if ps, _ := w.s.Catalog.Pieces(catalog.Query{Group: "home-backups"}); len(ps) != 96*len(devices) {
			t.Fatalf("%d backups, want %d", len(ps), 96*len(devices))
		}
	})
	t.Run("a week of 0 3 * * *", func(t *testing.T) {
		w := newSchedWorld(t, devices, 24*time.Hour)
		w.addSchedule(apiclient.NewSchedule{Name: "nightly", DeviceGroup: "homes", BackupGroup: "home-backups", Cron: "0 3 * * *"})
		w.until(t0.Add(7 * 24 * time.Hour))
		if n := len(w.backupJobs()); n != 7 {
			t.Fatalf("%d backup jobs in a week, want 7", n)
		}
		wantSlots(t, w.runSlots("nightly"), t0.Add(3*time.Hour), 24*time.Hour, 7)
	})
	t.Run("three days down run once", func(t *testing.T) {
		w := newSchedWorld(t, devices, 24*time.Hour)
		w.addSchedule(apiclient.NewSchedule{Name: "nightly", DeviceGroup: "homes", BackupGroup: "home-backups", Cron: "0 3 * * *"})
		w.until(t0.Add(24 * time.Hour)) // ran on day 1 at 03:00
		w.restart(72 * time.Hour)       // down over the 03:00 of days 2, 3 and 4
		if n := len(w.backupJobs()); n != 2 {
			t.Fatalf("%d backup jobs after three days down, want 2 (one catch-up)", n)
		}
		w.until(t0.Add(4*24*time.Hour + 3*time.Hour)) // the cadence resumes at 03:00
		if n := len(w.backupJobs()); n != 3 {
			t.Fatalf("%d backup jobs, want 3", n)
		}
		got := w.runSlots("nightly")
		want := []string{t0.Add(3 * time.Hour).Format(time.RFC3339), t0.Add(27 * time.Hour).Format(time.RFC3339), t0.Add(99 * time.Hour).Format(time.RFC3339)}
		if !slices.Equal(got, want) {
			t.Fatalf("runs at %v, want %v (the catch-up runs as the oldest missed slot)", got, want)
		}
		sc, err := w.admin().Schedule(context.Background(), "nightly")
		if err != nil || sc.LastRun == nil || !sc.LastRun.Slot.Equal(t0.Add(99*time.Hour)) || sc.LastRun.Outcome != "done" {
			t.Fatalf("schedule %+v, %v", sc, err)
		}
	})
}

// gauge reads one gauge of the server's registry; -1 when absent.
func gauge(t *testing.T, s *Server, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := s.api.metrics.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

func hasLabels(m *dto.Metric, labels map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := labels[lp.GetName()]; ok && v == lp.GetValue() {
			n++
		}
	}
	return n == len(labels)
}

// TestScheduledRPO: a device that goes offline misses its RPO once the
// objective passes, is told once, shows in the metrics, and meets it again
// after a successful backup.
func TestScheduledRPO(t *testing.T) {
	w := newSchedWorld(t, []string{"home1", "home2"}, 15*time.Minute)
	w.addSchedule(apiclient.NewSchedule{Name: "hourly", DeviceGroup: "homes", BackupGroup: "home-backups", Cron: "0 * * * *", RPO: "90m"})
	rpoDevices := func(state string) float64 {
		return gauge(t, w.s, "fleetvault_rpo_devices", map[string]string{"schedule": "hourly", "state": state})
	}
	states := func() map[string]string {
		st, err := w.admin().RPO(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, r := range st {
			out[r.Device] = r.State
		}
		return out
	}
	if st := states(); st["home1"] != apiclient.RPOUnknown || st["home2"] != apiclient.RPOUnknown {
		t.Fatalf("before any backup: %v, want unknown", st)
	}
	w.until(t0.Add(time.Hour)) // both backed up at 01:00
	if st := states(); st["home1"] != apiclient.RPOMet || st["home2"] != apiclient.RPOMet || rpoDevices("met") != 2 {
		t.Fatalf("after a backup: %v, %v met in the metrics", st, rpoDevices("met"))
	}

	w.offline("home2")
	w.until(t0.Add(2*time.Hour + 30*time.Minute)) // home2 failed at 02:00; 90 minutes not yet passed
	if st := states(); st["home2"] != apiclient.RPOMet || len(w.events.Of(notify.RPOMissed)) != 0 {
		t.Fatalf("at 02:30: %v, %d RPO events", st, len(w.events.Of(notify.RPOMissed)))
	}
	w.until(t0.Add(3*time.Hour + 30*time.Minute)) // missed since 02:45 (checked every 15 minutes), failed again at 03:00
	missed := w.events.Of(notify.RPOMissed)
	if st := states(); st["home2"] != apiclient.RPOMissed || st["home1"] != apiclient.RPOMet {
		t.Fatalf("at 03:30: %v", st)
	}
	if len(missed) != 1 || missed[0].Device != "home2" || missed[0].Schedule != "hourly" || missed[0].RPO != 90*time.Minute ||
		!missed[0].LastSuccess.Equal(t0.Add(time.Hour)) {
		t.Fatalf("RPOMissed events %+v, want one for home2", missed)
	}
	if rpoDevices("missed") != 1 || rpoDevices("met") != 1 {
		t.Fatalf("metrics: %v missed, %v met", rpoDevices("missed"), rpoDevices("met"))
	}
	if age := gauge(t, w.s, "fleetvault_backup_age_seconds", map[string]string{"schedule": "hourly"}); age != (2*time.Hour + 30*time.Minute).Seconds() {
		t.Fatalf("backup age %v s, want 9000", age)
	}

	w.online("home2")
	w.until(t0.Add(4 * time.Hour)) // backed up again at 04:00
	if st := states(); st["home2"] != apiclient.RPOMet || rpoDevices("met") != 2 || rpoDevices("missed") != 0 {
		t.Fatalf("after home2 is back: %v, metrics %v met %v missed", st, rpoDevices("met"), rpoDevices("missed"))
	}
	if n := len(w.events.Of(notify.RPOMissed)); n != 1 {
		t.Fatalf("%d RPOMissed events, want still 1", n)
	}
}

// pieceTimes returns the backups of group per device, newest first.
func piecesByDevice(t *testing.T, c *catalog.Catalog, group string) map[string][]catalog.Piece {
	t.Helper()
	ps, err := c.Pieces(catalog.Query{Group: group})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]catalog.Piece{}
	for _, p := range ps {
		out[p.Client] = append(out[p.Client], p)
	}
	for _, list := range out {
		slices.SortFunc(list, func(a, b catalog.Piece) int {
			if c := b.Time.Compare(a.Time); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
	}
	return out
}

func pieceIDs(ps []catalog.Piece) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.ID)
	}
	slices.Sort(out)
	return out
}

// TestScheduledRetention: after each scheduled backup the backup group's
// keep rule is applied, dropping exactly what catalog.Keepers decides over
// the device's backups; and the schedule's prune preview lists exactly what
// a run then drops.
func TestScheduledRetention(t *testing.T) {
	w := newSchedWorld(t, []string{"home1", "home2"}, 24*time.Hour)
	keep := apiclient.KeepRule{Last: 2, Hourly: 3}
	rule := catalog.KeepRule{Group: "home-backups", Last: keep.Last, Hourly: keep.Hourly}
	w.addSchedule(apiclient.NewSchedule{Name: "often", DeviceGroup: "homes", BackupGroup: "home-backups", Cron: "*/15 * * * *", Keep: &keep})
	ctx := context.Background()
	for slot := t0.Add(15 * time.Minute); !slot.After(t0.Add(4 * time.Hour)); slot = slot.Add(15 * time.Minute) {
		before := piecesByDevice(t, w.s.Catalog, "home-backups")
		w.until(slot)
		after := piecesByDevice(t, w.s.Catalog, "home-backups")
		dropped := 0
		for id := range w.devs {
			newest := after[id][0]
			if !newest.Time.Equal(slot) {
				t.Fatalf("%s: newest backup at %v, want the slot %v", id, newest.Time, slot)
			}
			all := append([]catalog.Piece{newest}, before[id]...)
			var times []time.Time
			for _, p := range all {
				times = append(times, p.Time)
			}
			var want []catalog.Piece
			for i, k := range catalog.Keepers(rule, times) {
				if k {
					want = append(want, all[i])
				}
			}
			if got := pieceIDs(after[id]); !slices.Equal(got, pieceIDs(want)) {
				t.Fatalf("%s after the %v run keeps %v, Keepers keeps %v", id, slot, got, pieceIDs(want))
			}
			dropped += len(all) - len(want)
		}
		sc, err := w.admin().Schedule(ctx, "often")
		if err != nil || sc.LastRun == nil || sc.LastRun.Pruned != dropped || !sc.LastRun.Slot.Equal(slot) {
			t.Fatalf("after the %v run: %+v (%v), want %d pruned", slot, sc.LastRun, err, dropped)
		}
	}

	// The preview against the run: with the devices' reads failing, a run
	// stores nothing new, so what it drops is what the preview showed.
	for id, d := range w.devs {
		d.failRead.Store(true)
		// History from before the schedule, to give retention work.
		for h := 1; h <= 5; h++ {
			if _, err := w.s.Catalog.Ingest(ctx, []catalog.NewPiece{{Client: id, Name: "settings", Type: "settings", Group: "home-backups",
				Time: t0.Add(-time.Duration(h) * time.Hour), Content: []byte(fmt.Sprintf("%s old %d", id, h))}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	preview, err := w.admin().PrunePreview(ctx, "often")
	if err != nil {
		t.Fatal(err)
	}
	if len(preview.Remove) != 10 || preview.Keep == nil || *preview.Keep != keep {
		t.Fatalf("preview %+v, want the 10 old backups removed by the group's rule", preview)
	}
	before := piecesByDevice(t, w.s.Catalog, "home-backups")
	w.until(t0.Add(4*time.Hour + 15*time.Minute))
	after := piecesByDevice(t, w.s.Catalog, "home-backups")
	var gone []string
	for id := range before {
		kept := map[string]bool{}
		for _, p := range after[id] {
			kept[p.ID] = true
		}
		for _, p := range before[id] {
			if !kept[p.ID] {
				gone = append(gone, p.ID)
			}
		}
	}
	var previewed []string
	for _, p := range preview.Remove {
		previewed = append(previewed, p.ID)
	}
	slices.Sort(gone)
	slices.Sort(previewed)
	if !slices.Equal(gone, previewed) {
		t.Fatalf("the run dropped %v, the preview showed %v", gone, previewed)
	}
	if sc, _ := w.admin().Schedule(ctx, "often"); sc.LastRun == nil || sc.LastRun.Pruned != len(previewed) || sc.LastRun.Outcome != "done" {
		t.Fatalf("last run %+v", sc.LastRun)
	}
}
