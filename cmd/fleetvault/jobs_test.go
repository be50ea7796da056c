package main

import (
	"github.com/fleetvault/fleetvault/apiclient"

	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/grouprestore"
)

const fakeToken = "fvt_test"

// fakeAPI is a scripted Fleetvault server: every job it starts ends at once
// with the outcome the test gave it.
type fakeAPI struct {
	mu      sync.Mutex
	final   apiclient.Job // what a started job ends as (ID is set on start)
	plan    apiclient.Plan
	started []apiclient.NewJob
	jobs    map[string]apiclient.Job
	control []string
}

func newFakeAPI(t *testing.T, final apiclient.Job) (*fakeAPI, *httptest.Server) {
	t.Helper()
	f := &fakeAPI{final: final, jobs: map[string]apiclient.Job{}}
	srv := httptest.NewServer(f.handler())
	t.Cleanup(srv.Close)
	return f, srv
}

func apiErr(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(apiclient.ErrorBody{Error: msg})
}

func (f *fakeAPI) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		var nj apiclient.NewJob
		if err := json.NewDecoder(r.Body).Decode(&nj); err != nil {
			apiErr(w, 400, err.Error())
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.started = append(f.started, nj)
		if nj.DryRun {
			_ = json.NewEncoder(w).Encode(f.plan)
			return
		}
		j := f.final
		j.ID = fmt.Sprintf("j-%d", len(f.started))
		j.Kind, j.Source, j.Target = grouprestore.Kind(nj.Kind), nj.Source, nj.Target
		if j.Progress != nil {
			p := *j.Progress
			p.Job = j.ID
			j.Progress = &p
		}
		f.jobs[j.ID] = j
		running := j
		running.State, running.Devices = grouprestore.JobRunning, nil
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(running)
	})
	mux.HandleFunc("GET /api/v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		out := []apiclient.Job{}
		for _, j := range f.jobs {
			j.Devices, j.Progress = nil, nil
			out = append(out, j)
		}
		_ = json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("GET /api/v1/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		j, ok := f.job(w, r)
		if !ok {
			return
		}
		if r.URL.Query().Get("devices") != "true" {
			j.Devices = nil
		}
		_ = json.NewEncoder(w).Encode(j)
	})
	mux.HandleFunc("GET /api/v1/jobs/{id}/events", func(w http.ResponseWriter, r *http.Request) {
		j, ok := f.job(w, r)
		if !ok {
			return
		}
		b, _ := json.Marshal(j.Progress)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "event: progress\nid: 0\ndata: %s\n\nevent: end\nid: 1\ndata: %s\n\n", b, b)
	})
	for _, what := range []string{"cancel", "pause", "resume"} {
		mux.HandleFunc("POST /api/v1/jobs/{id}/"+what, func(w http.ResponseWriter, r *http.Request) {
			j, ok := f.job(w, r)
			if !ok {
				return
			}
			f.mu.Lock()
			f.control = append(f.control, what+" "+j.ID)
			f.mu.Unlock()
			j.Devices = nil
			_ = json.NewEncoder(w).Encode(j)
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+fakeToken {
			apiErr(w, http.StatusUnauthorized, "missing API token: send the header \"Authorization: Bearer <token>\" with a token from fleetvault token create")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (f *fakeAPI) job(w http.ResponseWriter, r *http.Request) (apiclient.Job, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := r.PathValue("id")
	j, ok := f.jobs[id]
	if !ok {
		msg := fmt.Sprintf("no job %q; did you mean \"j-1\"?", id)
		if id == "x" {
			msg = "no job \"x\"; list them with GET /api/v1/jobs"
		}
		apiErr(w, http.StatusNotFound, msg)
	}
	return j, ok
}

// finalJob is a job that ended with these device outcomes.
func finalJob(state grouprestore.JobState, kind grouprestore.Kind, devs ...grouprestore.DeviceOutcome) apiclient.Job {
	counts := map[grouprestore.State]int{}
	for _, d := range devs {
		counts[d.State]++
	}
	return apiclient.Job{Kind: kind, State: state, Total: len(devs), Devices: devs,
		Progress: &grouprestore.Progress{Kind: kind, State: state, Total: len(devs), Done: len(devs), Counts: counts, Elapsed: 1500 * time.Millisecond}}
}

func devOutcome(id string, s grouprestore.State, reason string) grouprestore.DeviceOutcome {
	return grouprestore.DeviceOutcome{Device: id, Ident: "mqtt://" + id, State: s, Reason: reason}
}

// fvRun runs the command line in process with a clean environment.
func fvRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	for _, k := range []string{"FLEETVAULT_SERVER_URL", "FLEETVAULT_SERVER_TOKEN", "FLEETVAULT_MBR", "FLEETVAULT_CONFIG"} {
		t.Setenv(k, "")
	}
	var out, errOut bytes.Buffer
	code := run(append(args, "--log-format", "text", "--log-level", "error"), &out, &errOut)
	return code, out.String(), errOut.String()
}

// deadServerURL is an address where nothing listens.
func deadServerURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestJobExitCodes(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		final    apiclient.Job
		wantCode int
		wantOut  []string
		wantErr  string
	}{
		{"restore all restored", []string{"restore", "--from", "models", "--to", "homes"},
			finalJob(grouprestore.JobDone, grouprestore.KindRestore, devOutcome("h1", grouprestore.Restored, ""), devOutcome("h2", grouprestore.Restored, "")),
			exitOK, []string{"2 restored"}, ""},
		{"restore some no-match", []string{"restore", "--from", "models", "--to", "homes"},
			finalJob(grouprestore.JobDone, grouprestore.KindRestore, devOutcome("h1", grouprestore.Restored, ""), devOutcome("h2", grouprestore.NoMatch, "no backed-up tag has zone=East")),
			exitIncomplete, []string{"1 restored, 1 no-match", "no-match   h2: no backed-up tag has zone=East"}, "1 of 2 targeted devices did not end restored"},
		{"restore failed job", []string{"restore", "--from", "models", "--to", "homes"},
			func() apiclient.Job {
				j := finalJob(grouprestore.JobFailed, grouprestore.KindRestore, devOutcome("h1", grouprestore.Skipped, "job failed"))
				j.Reason = "journal: disk full"
				return j
			}(),
			exitError, []string{"failed: journal: disk full"}, "failed: journal: disk full"},
		{"backup all backed up", []string{"backup", "--group", "model-house", "--into", "models"},
			finalJob(grouprestore.JobDone, grouprestore.KindBackup, devOutcome("r1", grouprestore.BackedUp, "")),
			exitOK, []string{"backup job j-1", "1 backed-up"}, ""},
		{"undo aborted", []string{"undo", "j-0"},
			finalJob(grouprestore.JobAborted, grouprestore.KindUndo, devOutcome("h1", grouprestore.Failed, "timeout"), devOutcome("h2", grouprestore.Skipped, "job aborted")),
			exitIncomplete, []string{"undo job j-1 of job j-0: aborted", "failed     h1: timeout", "skipped    h2: job aborted"}, "did not end restored"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newFakeAPI(t, tt.final)
			code, out, errOut := fvRun(t, append(tt.args, "--server", srv.URL, "--token", fakeToken)...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errOut)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			if !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantErr, errOut)
			}
		})
	}
}

func TestRestoreJSON(t *testing.T) {
	_, srv := newFakeAPI(t, finalJob(grouprestore.JobDone, grouprestore.KindRestore, devOutcome("h1", grouprestore.Restored, ""), devOutcome("h2", grouprestore.Offline, "no answer in 20s")))
	code, out, _ := fvRun(t, "restore", "--from", "models", "--to", "homes", "--json", "--server", srv.URL, "--token", fakeToken)
	if code != exitIncomplete {
		t.Fatalf("exit %d, want %d", code, exitIncomplete)
	}
	var j apiclient.Job
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("stdout is not one JSON job: %v\n%s", err, out)
	}
	if j.State != grouprestore.JobDone || len(j.Devices) != 2 || j.Progress.Counts[grouprestore.Offline] != 1 {
		t.Errorf("JSON job = %+v", j)
	}
}

func TestRestoreRequest(t *testing.T) {
	f, srv := newFakeAPI(t, finalJob(grouprestore.JobDone, grouprestore.KindRestore, devOutcome("h1", grouprestore.Restored, "")))
	code, _, errOut := fvRun(t, "restore", "--from", "Backup Group for Reference IoT from model House", "--to", "Backup Group of Devices",
		"--canary", "5", "--canary-share", "10%", "--wave-size", "100", "--rate", "50", "--concurrency", "64",
		"--max-failures", "0.05", "--min-failures", "3", "--max-nomatch", "50%", "--min-nomatches", "10",
		"--timeout", "2s", "--retries", "1", "--offline-ttl", "30s", "--policy", "equal(manufacturer, model), ignorecase", "--read-back",
		"--server", srv.URL, "--token", fakeToken)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := apiclient.NewJob{Kind: "restore", Source: "Backup Group for Reference IoT from model House", Target: "Backup Group of Devices",
		Policy: "equal(manufacturer, model), ignorecase",
		Rollout: apiclient.Rollout{Concurrency: 64, Rate: 50, Canary: 5, CanaryShare: 0.1, WaveSize: 100, Timeout: "2s", Retries: 1,
			OfflineTTL: "30s", MaxFailureShare: 0.05, MinFailures: 3, MaxNoMatchShare: 0.5, MinNoMatches: 10, ReadBack: true}}
	if len(f.started) != 1 || fmt.Sprintf("%+v", f.started[0]) != fmt.Sprintf("%+v", want) {
		t.Errorf("request = %+v\nwant      %+v", f.started, want)
	}
}

func TestRestoreUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no from", []string{"restore", "--to", "homes"}, "restore needs --from"},
		{"bad share", []string{"restore", "--from", "a", "--to", "b", "--max-failures", "ten"}, "--max-failures"},
		{"share over 1", []string{"restore", "--from", "a", "--to", "b", "--canary-share", "150%"}, "from 0 to 1"},
		{"bad duration", []string{"restore", "--from", "a", "--to", "b", "--timeout", "soon"}, "invalid argument"},
		{"negative retries", []string{"restore", "--from", "a", "--to", "b", "--retries", "-2"}, "--retries -2"},
		{"bad policy", []string{"restore", "--from", "a", "--to", "b", "--policy", "demand everything"}, "--policy"},
		{"undo without job", []string{"undo"}, "undo needs the id"},
		{"jobs show without id", []string{"jobs", "show"}, "jobs show needs one job id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := fvRun(t, append(tt.args, "--server", deadServerURL(t))...)
			if code != exitUsage || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errOut, exitUsage, tt.want)
			}
		})
	}
}

func TestDryRun(t *testing.T) {
	f, srv := newFakeAPI(t, apiclient.Job{})
	f.plan = apiclient.Plan{DryRun: true, Kind: grouprestore.KindRestore, Source: "models", Target: "homes",
		Counts: map[grouprestore.State]int{grouprestore.WouldRestore: 1, grouprestore.Ambiguous: 1},
		Entries: []grouprestore.PlanEntry{
			{Device: "h2", State: grouprestore.Ambiguous, Reason: "north and south match equally well"},
			{Device: "h1", State: grouprestore.WouldRestore, Piece: "p-1", Reason: "matched zone=South"},
		}}
	code, out, _ := fvRun(t, "restore", "--from", "models", "--to", "homes", "--dry-run", "--server", srv.URL, "--token", fakeToken)
	if code != exitIncomplete {
		t.Errorf("exit %d, want %d", code, exitIncomplete)
	}
	if len(f.started) != 1 || !f.started[0].DryRun {
		t.Errorf("requests = %+v, want one dry run", f.started)
	}
	checkGolden(t, "restore-dry-run.golden", out)
}

func TestJobsCommands(t *testing.T) {
	f, srv := newFakeAPI(t, finalJob(grouprestore.JobCancelled, grouprestore.KindRestore, devOutcome("h1", grouprestore.Restored, ""), devOutcome("h2", grouprestore.Skipped, "job cancelled")))
	flags := []string{"--server", srv.URL, "--token", fakeToken}
	if code, _, errOut := fvRun(t, append([]string{"restore", "--from", "m", "--to", "h", "--detach"}, flags...)...); code != exitOK {
		t.Fatalf("restore --detach: exit %d: %s", code, errOut)
	}
	t.Run("cancel", func(t *testing.T) {
		code, out, errOut := fvRun(t, append([]string{"jobs", "cancel", "j-1"}, flags...)...)
		if code != exitOK || !strings.Contains(out, "cancelled") || !strings.Contains(out, "skipped    h2: job cancelled") {
			t.Errorf("exit %d\n%s%s", code, out, errOut)
		}
		if len(f.control) != 1 || f.control[0] != "cancel j-1" {
			t.Errorf("controls = %v", f.control)
		}
	})
	t.Run("pause and resume", func(t *testing.T) {
		for _, what := range []string{"pause", "resume"} {
			code, out, errOut := fvRun(t, append([]string{"jobs", what, "j-1"}, flags...)...)
			if code != exitOK || !strings.Contains(out, "restore job j-1") {
				t.Errorf("jobs %s: exit %d\n%s%s", what, code, out, errOut)
			}
		}
		if strings.Join(f.control, ",") != "cancel j-1,pause j-1,resume j-1" {
			t.Errorf("controls = %v", f.control)
		}
	})
	t.Run("show", func(t *testing.T) {
		code, out, _ := fvRun(t, append([]string{"jobs", "show", "j-1"}, flags...)...)
		if code != exitIncomplete || !strings.Contains(out, "1 restored, 1 skipped") {
			t.Errorf("exit %d\n%s", code, out)
		}
	})
	t.Run("watch", func(t *testing.T) {
		code, out, _ := fvRun(t, append([]string{"jobs", "watch", "j-1", "--json"}, flags...)...)
		if code != exitIncomplete || !strings.Contains(out, `"state": "cancelled"`) {
			t.Errorf("exit %d\n%s", code, out)
		}
	})
	t.Run("list", func(t *testing.T) {
		code, out, _ := fvRun(t, append([]string{"jobs", "list"}, flags...)...)
		if code != exitOK || !strings.Contains(out, "j-1") || !strings.Contains(out, "restore") {
			t.Errorf("exit %d\n%s", code, out)
		}
	})
	t.Run("unknown job suggests", func(t *testing.T) {
		code, _, errOut := fvRun(t, append([]string{"jobs", "watch", "j-l"}, flags...)...)
		if code != exitError || !strings.Contains(errOut, `did you mean "j-1"?`) {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("unknown job names the command to list them", func(t *testing.T) {
		code, _, errOut := fvRun(t, append([]string{"jobs", "show", "x"}, flags...)...)
		if code != exitError || !strings.Contains(errOut, "list them with fleetvault jobs list") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("no token", func(t *testing.T) {
		code, _, errOut := fvRun(t, "jobs", "list", "--server", srv.URL)
		if code != exitError || !strings.Contains(errOut, "--token") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("no server", func(t *testing.T) {
		code, _, errOut := fvRun(t, "jobs", "list", "--server", deadServerURL(t))
		if code != exitError || !strings.Contains(errOut, "no Fleetvault server answers") || !strings.Contains(errOut, "fleetvault serve") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
}
