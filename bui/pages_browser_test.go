package bui_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/scenario"
)

// TestBrowserOwnerSeesOwnDevices: alice logs on, sees her devices (and
// which are not protected), nothing of bob's, and gets a 404 for bob's
// device and job pages by URL; then logs out.
func TestBrowserOwnerSeesOwnDevices(t *testing.T) {
	w := testWorld(t)
	tb := newTabAs(t, w.base, "alice", alicePassword)
	tb.open("/")
	rows := eval[[]string](tb, `Array.from(document.querySelectorAll('#devices tbody th a')).map(a => a.textContent)`)
	if len(rows) != 8 {
		t.Fatalf("alice sees %d devices %v, want her 6 homes and 2 sheds", len(rows), rows)
	}
	for _, id := range rows {
		if !strings.HasPrefix(id, "home") && !strings.HasPrefix(id, "shed") {
			t.Errorf("alice sees %s, not hers", id)
		}
	}
	if n := tb.text("#count-not-protected"); n != "2" {
		t.Errorf("not protected: %s, want 2 (the sheds, never backed up)", n)
	}
	if n := tb.text("#count-protected"); n != "6" {
		t.Errorf("protected: %s, want 6 (the homes, backed up within their RPO)", n)
	}
	if first := rows[0]; !strings.HasPrefix(first, "shed") {
		t.Errorf("the first row is %s; the worst (not protected) come first", first)
	}
	tb.shot("overview")

	bobs := w.as(t, "bob")
	bj, err := bobs.StartJob(context.Background(), apiclient.NewJob{Kind: "backup", Source: "bob-homes", Target: "bob-nightly"})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/devices/bob01-climate", "/jobs/" + bj.ID, "/jobs/" + bj.ID + "/events"} {
		t.Run("404 "+path, func(t *testing.T) {
			resp, err := chromedp.Run(tb.ctx, chromedp.NavigateResponse(w.base+path))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != 404 {
				t.Fatalf("alice opened %s: status %d, want 404", path, resp.Status)
			}
			if msg := tb.text("#error-message"); !strings.Contains(msg, "No ") {
				t.Errorf("message %q", msg)
			}
		})
	}
}

// TestBrowserLogOut: after log-out the pages send the person to log on.
func TestBrowserLogOut(t *testing.T) {
	w := testWorld(t)
	tb := newTab(t, w.base)
	tb.logOn("bob", bobPassword)
	if rows := eval[[]string](tb, `Array.from(document.querySelectorAll('#devices tbody th a')).map(a => a.textContent)`); len(rows) != 2 {
		t.Fatalf("bob sees %v, want his 2 homes", rows)
	}
	tb.do("log out", chromedp.Click(chromedp.CSS("form.who button")), chromedp.WaitVisible(chromedp.CSS("#logon-message")))
	tb.open("/")
	if loc, _ := chromedp.Run(tb.ctx, chromedp.Location()); !strings.Contains(loc, "/logon") {
		t.Fatalf("after log-out / went to %s, want the log-on page", loc)
	}
}

// TestBrowserCSRF: a form posted without its token is refused and changes
// nothing.
func TestBrowserCSRF(t *testing.T) {
	w := testWorld(t)
	ss := w.as(t, "alice")
	j, err := ss.StartJob(context.Background(), apiclient.NewJob{Kind: "restore", Source: "homes-nightly", Target: "new-homes",
		Rollout: apiclient.Rollout{Concurrency: 1, Rate: 0.05}}) // one device per 20 s: running while the test acts
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = ss.CancelJob(context.Background(), j.ID) })
	tb := newTabAs(t, w.base, "alice", alicePassword)
	tb.open("/jobs/" + j.ID)
	tb.do("post the cancel form without its token",
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#live form input[name=csrf]').remove()`),
		chromedp.Click(chromedp.CSS("#cancel")),
		chromedp.WaitVisible(chromedp.CSS("#error-message")))
	if msg := tb.text("#error-message"); !strings.Contains(msg, "CSRF") {
		t.Fatalf("message %q, want a refusal naming the CSRF token", msg)
	}
	if got, _ := ss.Job(context.Background(), j.ID, false); got.State.Final() {
		t.Fatalf("the job ended (%s) on a form without its token", got.State)
	}
}

// TestBrowserCancel: a running job is cancelled from its page, live.
func TestBrowserCancel(t *testing.T) {
	w := testWorld(t)
	ss := w.as(t, "alice")
	j, err := ss.StartJob(context.Background(), apiclient.NewJob{Kind: "restore", Source: "homes-nightly", Target: "new-homes",
		Rollout: apiclient.Rollout{Concurrency: 1, Rate: 0.05}}) // one device per 20 s: running while the test acts
	if err != nil {
		t.Fatal(err)
	}
	tb := newTabAs(t, w.base, "alice", alicePassword)
	tb.open("/jobs")
	if !strings.Contains(tb.text("#running-"+j.ID), "Cancel job "+j.ID) {
		t.Fatalf("the jobs page does not list %s as running with a Cancel", j.ID)
	}
	tb.open("/jobs/" + j.ID)
	tb.shot("job")
	tb.do("cancel", chromedp.Click(chromedp.CSS("#cancel")), chromedp.WaitVisible(chromedp.CSS("#job-state")))
	tb.waitFor("the job to be cancelled", `document.querySelector('#job-state').textContent === 'cancelled'`)
	got, err := ss.Job(context.Background(), j.ID, true)
	if err != nil || got.State != grouprestore.JobCancelled {
		t.Fatalf("job %s: %s %v, want cancelled", j.ID, got.State, err)
	}
}

// TestBrowserRestoreWizard: alice restores the model house's backups to her
// new homes through the wizard, watches the job to its end, and the devices
// hold what the oracle expects.
func TestBrowserRestoreWizard(t *testing.T) {
	w := testWorld(t)
	tb := newTabAs(t, w.base, "alice", alicePassword)
	tb.open("/restore")
	tb.do("step 1: the device group",
		chromedp.SetValue(chromedp.CSS("#group"), "new-homes"),
		chromedp.Click(chromedp.CSS("#next1")),
		chromedp.WaitVisible(chromedp.CSS("#next2")))
	tb.do("step 2: the newest reference backup",
		chromedp.Click(chromedp.CSS(`input[name=version][value^="`+w.w.BackupGroup+`@"]`)),
		chromedp.Click(chromedp.CSS("#next2")),
		chromedp.WaitVisible(chromedp.CSS("#dryrun")))
	tb.do("step 3: no profile, dry run",
		chromedp.SetValue(chromedp.CSS("#profile"), "-"),
		chromedp.Click(chromedp.CSS("#dryrun")),
		chromedp.WaitVisible(chromedp.CSS("#plan")))
	tb.shot("wizard-dry-run")
	would := eval[int](tb, `document.querySelectorAll('#plan tbody .st-restored').length`)
	if would != 6 {
		t.Fatalf("the dry run says %d devices would be restored, want 6", would)
	}
	tb.do("start", chromedp.Click(chromedp.CSS("#start")), chromedp.WaitVisible(chromedp.CSS("#job-state")))
	tb.waitFor("the job to end", `document.querySelector('[data-ended]') !== null || document.querySelector('#job-state').textContent === 'done'`)
	loc, err := chromedp.Run(tb.ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	id := loc[strings.LastIndex(loc, "/")+1:]
	j, err := w.w.Server.Engine.Job(id)
	if err != nil {
		t.Fatalf("job %s of the wizard: %v", id, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if p, err := j.Wait(ctx); err != nil || p.State != grouprestore.JobDone {
		t.Fatalf("job %s ended %s (%s) %v", id, p.State, p.Reason, err)
	}
	if bad := scenario.Check(id, j.Devices(), w.w.Expect("new-homes"), w.w.Truth()); len(bad) > 0 {
		t.Fatalf("ground truth: %v", bad)
	}
	tb.open("/jobs/" + id)
	if n := eval[int](tb, `document.querySelectorAll('#job-devices tbody .st-restored').length`); n != 6 {
		t.Fatalf("the job page shows %d devices restored, want 6", n)
	}
}

// TestBrowserWrongPassword: a wrong password gets a clear message; the
// address is throttled after too many.
func TestBrowserWrongPassword(t *testing.T) {
	w := testWorld(t)
	th := throttledUI(t, w, 1)
	tb := newTab(t, th)
	tb.logOn("alice", "not-her-password")
	if msg := tb.text("#logon-message"); !strings.Contains(msg, "Wrong user name or password") {
		t.Fatalf("a wrong password: message %q", msg)
	}
	tb.logOn("alice", alicePassword) // even the right one, while throttled
	if msg := tb.text("#logon-message"); !strings.Contains(msg, "Too many failed log-ons") {
		t.Fatalf("after a failure with an allowance of one: %q, want the throttle's message", msg)
	}
}

// TestBrowserCertification: alice test-restores a home's newest backup into
// a twin, sees the evidence, and certifies it.
func TestBrowserCertification(t *testing.T) {
	w := testWorld(t)
	tb := newTabAs(t, w.base, "alice", alicePassword)
	tb.open("/certification?state=unknown")
	tb.do("open a home's backup", chromedp.Click(chromedp.CSS(`#certs tbody a[href^="/certification/backup"]`)), chromedp.WaitVisible(chromedp.CSS("#test-restore")))
	tb.do("test restore", chromedp.Click(chromedp.CSS("#test-restore")), chromedp.WaitVisible(chromedp.CSS("#evidence")))
	if ev := tb.text("#evidence"); !strings.Contains(ev, "ran through") || strings.Contains(ev, "✖ no") {
		t.Fatalf("evidence: %q, want a test restore that ran through, verified and read back", ev)
	}
	tb.shot("certification")
	tb.do("certify", chromedp.SendKeys(chromedp.CSS("#note"), "twin matches"), chromedp.Click(chromedp.CSS("#certify-yes")))
	tb.waitFor("the certification", `document.querySelector('#cert-state') !== null && document.querySelector('#cert-state').textContent === 'certified'`)
}

// TestBrowserStatistics: the statistics page draws its charts on the server
// and offers the CSV.
func TestBrowserStatistics(t *testing.T) {
	w := testWorld(t)
	tb := newTabAs(t, w.base, "alice", alicePassword)
	tb.open("/stats?days=7")
	if n := eval[int](tb, `document.querySelectorAll('main svg.chart').length`); n != 3 {
		t.Fatalf("%d charts, want 3 (success rate, volume, restore durations)", n)
	}
	if n := eval[int](tb, `document.querySelectorAll('main svg.chart rect').length`); n != 3*7 {
		t.Fatalf("%d bars, want 3 charts of 7 days", n)
	}
	tb.shot("statistics")
	head, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`fetch('/stats.csv?days=7').then(r => r.text()).then(t => t.split('\n')[0])`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(head, "day,backup_attempts") {
		t.Fatalf("the CSV starts %q", head)
	}
}

// maxPageBytes is the most a page may weigh before images: its HTML, CSS
// and scripts.
const maxPageBytes = 150 << 10

// TestBrowserPageWeight: no page weighs over 150 KB before images.
func TestBrowserPageWeight(t *testing.T) {
	w := testWorld(t)
	jobs, err := w.as(t, "alice").Jobs(context.Background())
	if err != nil || len(jobs) == 0 {
		t.Fatalf("alice's jobs: %v %v", jobs, err)
	}
	pages := map[string][]string{
		"alice": {"/", "/?sort=backup&dir=desc", "/jobs", "/jobs/" + jobs[0].ID, "/devices/home01-climate", "/restore", "/restore?group=new-homes",
			"/stats?days=7", "/stats?days=30", "/stats?days=365", "/certification", "/settings"},
		"admin": {"/", "/admin", "/settings"},
	}
	passwords := map[string]string{"alice": alicePassword, "admin": adminPassword}
	for user, paths := range pages {
		tb := newTabAs(t, w.base, user, passwords[user])
		for _, p := range paths {
			t.Run(user+" "+p, func(t *testing.T) {
				tb.open(p)
				n := eval[int](tb, `performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource')).reduce((s, e) => s + e.decodedBodySize, 0)`)
				if n == 0 || n > maxPageBytes {
					t.Fatalf("%s weighs %d bytes with its CSS and script, want at most %d", p, n, maxPageBytes)
				}
				t.Logf("%s: %d bytes", p, n)
			})
		}
	}
}
