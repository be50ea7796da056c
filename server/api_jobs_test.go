package server

import (
	"github.com/fleetvault/fleetvault/apiclient"

	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/agent/agenttest"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/grouprestore"
)

// fleet provisions a model house (two reference devices) and n new homes
// through the API, connects them all as MemDevices, and returns the homes.
func (e *apiEnv) fleet(t *testing.T, n int) map[string]*agenttest.MemDevice {
	t.Helper()
	north := agent.Settings{"setpoint": 21.5, "fan": map[string]any{"mode": "auto", "speed": 2}}
	south := agent.Settings{"setpoint": 24.5, "fan": map[string]any{"mode": "auto"}, "eco": true}
	nds := []apiclient.NewDevice{{ID: "ref-north", Group: "model-house"}, {ID: "ref-south", Group: "model-house"}}
	for i := 0; i < n; i++ {
		nds = append(nds, apiclient.NewDevice{ID: fmt.Sprintf("home%d-climate", i), Group: "new-homes"})
	}
	res, err := e.c.AddDevices(e.ctx, nds, false)
	if err != nil {
		t.Fatal(err)
	}
	homes := map[string]*agenttest.MemDevice{}
	for i, d := range res.Devices {
		var dev *agenttest.MemDevice
		switch {
		case d.ID == "ref-north":
			dev = agenttest.NewMemDevice(tag("North"), north)
		case d.ID == "ref-south":
			dev = agenttest.NewMemDevice(tag("South"), south)
		default:
			dev = agenttest.NewMemDevice(tag([]string{"North", "South"}[i%2]), agent.Settings{"setpoint": 20})
			homes[d.ID] = dev
		}
		serveDevice(t, e.s, d.ID, d.Password, dev)
	}
	return homes
}

// waitJob polls a job until it ends.
func (e *apiEnv) waitJob(t *testing.T, id string) apiclient.Job {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		j, err := e.c.Job(e.ctx, id, true)
		if err != nil {
			t.Fatal(err)
		}
		if j.State.Final() {
			return j
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("job %s did not end", id)
	return apiclient.Job{}
}

func TestAPIBackupRestoreJobs(t *testing.T) {
	e := startAPI(t)
	homes := e.fleet(t, 6)
	ctx := e.ctx

	b, err := e.c.StartJob(ctx, apiclient.NewJob{Kind: "backup", Source: "model-house", Target: "reference-iot"})
	if err != nil {
		t.Fatal(err)
	}
	if b.ID == "" || b.Kind != grouprestore.KindBackup || b.Progress == nil {
		t.Fatalf("started %+v", b)
	}
	if j := e.waitJob(t, b.ID); j.State != grouprestore.JobDone || j.Progress.Counts[grouprestore.BackedUp] != 2 || len(j.Devices) != 2 {
		t.Fatalf("backup ended %+v", j)
	}

	t.Run("backups", func(t *testing.T) { checkBackups(t, e) })

	plan, err := e.c.PlanJob(ctx, apiclient.NewJob{Kind: "restore", Source: "reference-iot", Target: "new-homes"})
	if err != nil || len(plan.Entries) != 6 || plan.Counts[grouprestore.WouldRestore] != 6 {
		t.Fatalf("dry run: %+v %v", plan, err)
	}
	for id, d := range homes {
		if s, _ := d.Settings(ctx); fmt.Sprint(s["setpoint"]) != "20" {
			t.Fatalf("the dry run wrote to %s: %v", id, s)
		}
	}

	r, err := e.c.StartJob(ctx, apiclient.NewJob{Kind: "restore", Source: "reference-iot", Target: "new-homes",
		Rollout: apiclient.Rollout{Concurrency: 2, Timeout: "5s", Backoff: "50ms"}})
	if err != nil {
		t.Fatal(err)
	}
	var events int
	final, err := e.c.WatchJob(ctx, r.ID, func(grouprestore.Progress) error { events++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if events == 0 || final.State != grouprestore.JobDone || final.Counts[grouprestore.Restored] != 6 || final.Done != 6 {
		t.Fatalf("events %d, final %+v", events, final)
	}
	j, err := e.c.Job(ctx, r.ID, true)
	if err != nil || len(j.Devices) != 6 || j.Rollout.Timeout != "5s" || j.Created == nil {
		t.Fatalf("job: %+v %v", j, err)
	}
	for _, d := range j.Devices {
		if d.State != grouprestore.Restored {
			t.Errorf("%s", d)
		}
	}
	jobs, err := e.c.Jobs(ctx)
	if err != nil || len(jobs) != 2 || jobs[0].ID != r.ID {
		t.Fatalf("jobs: %+v %v", jobs, err)
	}
	dev, err := e.c.Device(ctx, "home0-climate")
	if err != nil || len(dev.Restores) == 0 {
		t.Fatalf("device history: %+v %v", dev, err)
	}

	t.Run("sse format", func(t *testing.T) {
		// A finished job's stream is one progress event and the end.
		req, _ := http.NewRequest("GET", e.ts.URL+"/api/v1/jobs/"+r.ID+"/events", nil)
		req.Header.Set("Authorization", "Bearer "+e.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("content type %q", ct)
		}
		var names []string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if name, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				names = append(names, name)
			}
			if l := sc.Text(); strings.HasPrefix(l, "data: ") && !strings.Contains(l, `"state":"done"`) {
				t.Errorf("data line %s", l)
			}
		}
		if len(names) < 2 || names[len(names)-1] != "end" || names[0] != "progress" {
			t.Fatalf("events %v", names)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		want := []string{
			`fleetvault_device_outcomes_total{kind="restore",state="restored"} 6`,
			`fleetvault_device_outcomes_total{kind="backup",state="backed-up"} 2`,
			`fleetvault_jobs{kind="restore",state="done"} 1`,
			`fleetvault_transport_request_seconds_bucket{location="TAG+SETTINGS",method="READ",result="ok",transport="mqtt"`,
			`fleetvault_transport_request_seconds_count{location="TAG+SETTINGS",method="WRITE",result="ok",transport="mqtt"} 6`,
			`fleetvault_broker_connected_clients`,
			`fleetvault_broker_auth_failures_total{reason="password"} 0`,
			`fleetvault_mqtt_requests_sent_total`,
			`fleetvault_jobs_started_total{kind="restore"} 1`,
			"fleetvault_tag_mismatches_total 0",
			"fleetvault_storage_write_errors_total 0",
			"fleetvault_jobs_storage_paused 0",
		}
		var text string
		deadline := time.Now().Add(10 * time.Second)
		for {
			text, err = e.c.Metrics(ctx)
			if err != nil {
				t.Fatal(err)
			}
			missing := ""
			for _, w := range want {
				if !strings.Contains(text, w) {
					missing = w
				}
			}
			if missing == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("metrics lack %s:\n%s", missing, grepLines(text, "fleetvault_"))
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("undo", func(t *testing.T) {
		u, err := e.c.StartJob(ctx, apiclient.NewJob{Kind: "undo", Source: r.ID})
		if err != nil {
			t.Fatal(err)
		}
		if j := e.waitJob(t, u.ID); j.State != grouprestore.JobDone || j.Progress.Counts[grouprestore.Restored] != 6 {
			t.Fatalf("undo: %+v", j.Progress)
		}
		if s, _ := homes["home0-climate"].Settings(ctx); fmt.Sprint(s["setpoint"]) != "20" {
			t.Fatalf("after undo: %v", s)
		}
	})
}

func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func checkBackups(t *testing.T, e *apiEnv) {
	ctx := e.ctx
	all, err := e.c.Backups(ctx, apiclient.BackupQuery{Group: "reference-iot"})
	if err != nil || len(all) != 2 {
		t.Fatalf("backups: %+v %v", all, err)
	}
	byClient := map[string]apiclient.Backup{}
	for _, b := range all {
		byClient[b.Client] = b
	}
	north, south := byClient["ref-north"], byClient["ref-south"]
	if north.ID == "" || south.ID == "" || north.Hash == "" {
		t.Fatalf("backups %+v", all)
	}
	if got, err := e.c.Backups(ctx, apiclient.BackupQuery{Group: "reference-iot", Tag: "zone=South"}); err != nil || len(got) != 1 || got[0].ID != south.ID {
		t.Fatalf("by tag: %+v %v", got, err)
	}
	if got, err := e.c.Backups(ctx, apiclient.BackupQuery{Client: "ref-north", Limit: 1}); err != nil || len(got) != 1 {
		t.Fatalf("by client: %+v %v", got, err)
	}
	if got, err := e.c.Backups(ctx, apiclient.BackupQuery{Group: "reference-iot", From: time.Now().Add(time.Hour)}); err != nil || len(got) != 0 {
		t.Fatalf("from the future: %+v %v", got, err)
	}
	show, err := e.c.Backup(ctx, north.ID)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := show.Settings.(map[string]any)
	if !ok || s["setpoint"] != 21.5 {
		t.Fatalf("settings %#v", show.Settings)
	}
	d, err := e.c.DiffBackups(ctx, north.ID, south.ID)
	if err != nil {
		t.Fatal(err)
	}
	paths := func(cs []apiclient.Change) string {
		var p []string
		for _, c := range cs {
			p = append(p, c.Path)
		}
		return strings.Join(p, ",")
	}
	if d.Same || paths(d.Added) != "/eco" || paths(d.Removed) != "/fan/speed" || paths(d.Changed) != "/setpoint" {
		t.Fatalf("diff %+v", d)
	}
	if same, err := e.c.DiffBackups(ctx, north.ID, north.ID); err != nil || !same.Same {
		t.Fatalf("self diff %+v %v", same, err)
	}
	bad := []struct {
		name, path string
		status     int
		want       string
	}{
		{"unknown backup", "/api/v1/backups/nope", 404, `no backup "nope"`},
		{"diff needs both", "/api/v1/backups/diff?a=" + north.ID, 400, `"b"`},
		{"bad tag", "/api/v1/backups?tag=zone", 400, "key=value"},
		{"bad limit", "/api/v1/backups?limit=0", 400, `"limit"`},
		{"bad time", "/api/v1/backups?from=yesterday", 400, `"from"`},
		{"bad export", "/api/v1/catalog/export?format=xml", 400, "sql or json"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			code, body := e.raw(t, "GET", b.path, e.token, "", "")
			if code != b.status || !strings.Contains(body, b.want) {
				t.Fatalf("status %d body %s; want %d containing %q", code, body, b.status, b.want)
			}
		})
	}
	var sb strings.Builder
	if err := e.c.ExportCatalog(ctx, "sql", &sb); err != nil || !strings.Contains(sb.String(), "CREATE TABLE pieces") || !strings.Contains(sb.String(), north.ID) {
		t.Fatalf("export: %v %.200s", err, sb.String())
	}
}

func TestAPIJobControl(t *testing.T) {
	e := startAPI(t)
	ctx := e.ctx
	// Devices that never connect: the backup parks them until the offline
	// time-to-live, so the job runs until it is cancelled.
	if _, err := e.c.AddDevices(ctx, []apiclient.NewDevice{{ID: "away1", Group: "away"}, {ID: "away2", Group: "away"}}, false); err != nil {
		t.Fatal(err)
	}
	j, err := e.c.StartJob(ctx, apiclient.NewJob{Kind: "backup", Source: "away", Target: "never", Rollout: apiclient.Rollout{Timeout: "100ms", OfflineTTL: "10m"}})
	if err != nil {
		t.Fatal(err)
	}
	waitState := func(want grouprestore.JobState) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, err := e.c.Job(ctx, j.ID, false)
			if err != nil {
				t.Fatal(err)
			}
			if got.State == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("job state %s, want %s", got.State, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if _, err := e.c.PauseJob(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	waitState(grouprestore.JobPaused)
	if _, err := e.c.ResumeJob(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	waitState(grouprestore.JobRunning)
	if _, err := e.c.CancelJob(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	waitState(grouprestore.JobCancelled)
	if _, err := e.c.PauseJob(ctx, j.ID); apiclient.StatusOf(err) != 409 {
		t.Fatalf("pause an ended job: %v", err)
	}
	if _, err := e.c.CancelJob(ctx, "nojob"); apiclient.StatusOf(err) != 404 {
		t.Fatalf("cancel an unknown job: %v", err)
	}

	bad := []struct {
		name, body string
		status     int
		want       string
	}{
		{"bad kind", `{"kind":"copy","source":"away","target":"x"}`, 400, `"kind"`},
		{"no source", `{"kind":"backup","target":"x"}`, 400, `"source"`},
		{"no target", `{"kind":"restore","source":"x"}`, 400, `"target"`},
		{"unknown group", `{"kind":"backup","source":"awya","target":"x"}`, 404, `did you mean "away"?`},
		{"unknown backup group", `{"kind":"restore","source":"nevr","target":"away"}`, 404, `no backups`},
		{"bad duration", `{"kind":"backup","source":"away","target":"x","rollout":{"timeout":"5 parsecs"}}`, 400, `"rollout.timeout"`},
		{"bad share", `{"kind":"backup","source":"away","target":"x","rollout":{"canary_share":2}}`, 400, `canary share`},
		{"unknown rollout field", `{"kind":"backup","source":"away","target":"x","rollout":{"speed":1}}`, 400, `"speed"`},
		{"dry run backup", `{"kind":"backup","source":"away","target":"x","dry_run":true}`, 400, `"dry_run"`},
		{"bad policy", `{"kind":"restore","source":"never","target":"away","policy":"(("}`, 400, `"policy"`},
		{"undo unknown", `{"kind":"undo","source":"nojob"}`, 404, `no job`},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			code, body := e.raw(t, "POST", "/api/v1/jobs", e.token, "application/json", b.body)
			if code != b.status || !strings.Contains(body, b.want) {
				t.Fatalf("status %d body %s; want %d containing %q", code, body, b.status, b.want)
			}
		})
	}
}

func TestHealthz(t *testing.T) {
	e := startAPI(t)
	h, err := apiclient.NewClient(e.ts.URL, "").Health(e.ctx)
	if err != nil || h.Status != "ok" || h.Broker != e.s.BrokerURL() {
		t.Fatalf("%+v %v", h, err)
	}
}

// TestAPIJobResumedAfterRestart stops a server with a job running and starts
// another on the same installation: the job is resumed and the API shows it.
func TestAPIJobResumedAfterRestart(t *testing.T) {
	mbr, err := catalog.Init(t.TempDir(), catalog.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start := func() (*Server, *apiclient.Client) {
		s, err := Start(context.Background(), Options{MBR: mbr, MQTTAddr: "127.0.0.1:0", CoAPListen: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		tok, err := s.Tokens().Create(fmt.Sprintf("t%d", time.Now().UnixNano()))
		if err != nil {
			t.Fatal(err)
		}
		return s, apiclient.NewClient("http://"+s.HTTPAddr().String(), tok)
	}
	s1, c1 := start()
	ctx := context.Background()
	if _, err := c1.AddDevices(ctx, []apiclient.NewDevice{{ID: "away1", Group: "away"}}, false); err != nil {
		t.Fatal(err)
	}
	j, err := c1.StartJob(ctx, apiclient.NewJob{Kind: "backup", Source: "away", Target: "never", Rollout: apiclient.Rollout{Timeout: "100ms", OfflineTTL: "10m"}})
	if err != nil {
		t.Fatal(err)
	}
	// A watcher of the events sees the stream close without an end event.
	watched := make(chan error, 1)
	go func() {
		_, err := c1.WatchJob(ctx, j.ID, nil)
		watched <- err
	}()
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-watched:
		if err == nil {
			t.Fatal("WatchJob reported the end of a job that was only stopped")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the event stream stayed open after Close")
	}

	_, c2 := start()
	got, err := c2.Job(ctx, j.ID, false)
	if err != nil || got.State != grouprestore.JobRunning {
		t.Fatalf("after restart: %+v %v", got, err)
	}
	if _, err := c2.CancelJob(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
}
