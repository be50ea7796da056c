package main

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
)

// e2eDeviceList is the part of the simulator's device list the test reads.
type e2eDeviceList []struct {
	ID    string `yaml:"id"`
	Group string `yaml:"group"`
}

// TestE2EDataOwners runs the binary as an administrator and two data owners
// would: users and assignments made with the CLI, tokens for both owners, a
// server and a simulated fleet. Owner A lists exactly their devices; A's
// restore to B's group is refused and the simulator's ground truth shows no
// device was probed or written; A's backups carry A as piece_owner; the audit
// entries acknowledged before a kill -9 of the server are still there.
func TestE2EDataOwners(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("end-to-end: needs the go tool to build the binary")
	}
	o := newOwnersE2E(t)
	t.Run("owner A lists exactly A's devices", o.listsOwn)
	t.Run("owner A backs up A's devices; the backups carry A", o.backsUpOwn)
	t.Run("owner A restoring to B's group is refused, and no device of B's is touched", o.restoreRefused)
	t.Run("owner A test-restores A's backup into a twin and certifies it; no device is touched; B cannot see it", o.certifies)
	t.Run("the admin manages users through the running server; owners may not", o.adminManagesUsers)
	t.Run("audit entries acknowledged before kill -9 are kept", o.auditSurvivesKill)
	t.Run("the catalog export shows A as the owner of A's backups", o.exportShowsOwner)
}

// ownersE2E is the world of TestE2EDataOwners: an installation whose fleet
// is split between alice (A) and bob (B), a server, and a simulator that
// writes its ground truth.
type ownersE2E struct {
	w           *e2eWorld
	tokA, tokB  string
	wantA, idsB []string // A's device ids, sorted; B's
	truth       string   // the simulator's ground-truth file
}

func newOwnersE2E(t *testing.T) *ownersE2E {
	w := newE2EInstallation(t)
	fleet, err := filepath.Abs(filepath.Join("testdata", "e2e-fleet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	list, truth := filepath.Join(w.dir, "devices.yaml"), filepath.Join(w.dir, "truth.json")
	w.start("sim", "--fleet", fleet, "--broker", "mqtt://"+w.mqttAddr, "--devices-out", list, "--truth-out", truth, "--summary", "100ms")
	e2eWaitFor(t, 30*time.Second, "the simulator's device list", func() bool { _, err := os.Stat(list); return err == nil })

	// The administrator's part, on the installation directly (no server yet).
	w.must(exitOK, "device", "import", list, "--mbr", w.mbr)
	partA := []string{"model-house-north", "model-house-south", "odd-homes"}
	w.asOwner("alice", partA)
	w.asOwner("bob", []string{"new-homes"})
	w.must(exitOK, "group", "create", "models-a", "--kind", "backup", "--mbr", w.mbr)
	w.must(exitOK, "owner", "assign", "alice", "--backup-group", "models-a", "--mbr", w.mbr)
	o := &ownersE2E{w: w, truth: truth,
		tokA: e2eTokenOf(t, w.must(exitOK, "token", "create", "--name", "alice-laptop", "--user", "alice", "--mbr", w.mbr)),
		tokB: e2eTokenOf(t, w.must(exitOK, "token", "create", "--name", "bob-laptop", "--user", "bob", "--mbr", w.mbr))}
	if o.tokA == o.tokB {
		t.Fatal("two tokens are the same")
	}
	w.startServer()

	var devs e2eDeviceList
	b, err := os.ReadFile(list)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &devs); err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		if contains(partA, d.Group) {
			o.wantA = append(o.wantA, d.ID)
		} else {
			o.idsB = append(o.idsB, d.ID)
		}
	}
	sort.Strings(o.wantA)
	return o
}

// listsOwn: owner A lists exactly A's devices.
func (o *ownersE2E) listsOwn(t *testing.T) {
	got := o.w.listDevices(o.tokA)
	if strings.Join(got, " ") != strings.Join(o.wantA, " ") {
		t.Errorf("GET /api/v1/devices as alice:\n got %v\nwant %v", got, o.wantA)
	}
	if gotB := o.w.listDevices(o.tokB); len(gotB) != len(o.idsB) {
		t.Errorf("GET /api/v1/devices as bob: %d devices, want %d", len(gotB), len(o.idsB))
	}
}

// backsUpOwn: owner A backs up A's devices; the backups carry A.
func (o *ownersE2E) backsUpOwn(t *testing.T) {
	if code, out, errOut := o.w.fv(o.tokA, append([]string{"backup", "--group", "model-house-north", "--into", "models-a"}, e2eRollout...)...); code != exitOK {
		t.Fatalf("backup as alice: exit %d\n%s%s", code, out, errOut)
	}
	_, out, _ := o.w.fv(o.tokA, "backups", "list", "--group", "models-a", "--json")
	var bs []apiclient.Backup
	if err := json.Unmarshal([]byte(out), &bs); err != nil || len(bs) != 2 {
		t.Fatalf("backups list as alice: %v\n%s", err, out)
	}
	for _, b := range bs {
		if b.Owner != "alice" {
			t.Errorf("backup %s of %s: owner %q, want alice", b.ID, b.Client, b.Owner)
		}
	}
}

// restoreRefused: owner A restoring to B's group is refused, and no device of B's is touched.
func (o *ownersE2E) restoreRefused(t *testing.T) {
	before := o.w.freshTruth(o.truth)
	code, out, errOut := o.w.fv(o.tokA, append([]string{"restore", "--from", "models-a", "--to", "new-homes"}, e2eRollout...)...)
	if code != exitError || !strings.Contains(errOut, `no group "new-homes"`) {
		t.Fatalf("restore as alice to bob's group: exit %d\n%s%s", code, out, errOut)
	}
	after := o.w.freshTruth(o.truth)
	if after.Requests != before.Requests {
		t.Errorf("the devices received %d requests during the refused restore, want none", after.Requests-before.Requests)
	}
	for _, id := range o.idsB {
		if before.Devices[id] != after.Devices[id] {
			t.Errorf("device %s of bob's changed: %+v -> %+v", id, before.Devices[id], after.Devices[id])
		}
	}
}

// certifies: owner A test-restores a backup into a twin through the
// running server (no device of the fleet receives a request), certifies it,
// and owner B is told it does not exist.
func (o *ownersE2E) certifies(t *testing.T) {
	_, out, _ := o.w.fv(o.tokA, "backups", "list", "--group", "models-a", "--json")
	var bs []apiclient.Backup
	if err := json.Unmarshal([]byte(out), &bs); err != nil || len(bs) == 0 {
		t.Fatalf("backups list as alice: %v\n%s", err, out)
	}
	id := bs[0].ID
	before := o.w.freshTruth(o.truth)
	code, out, errOut := o.w.fv(o.tokA, "certify", "test", id, "--into", "twin", "--json")
	var c apiclient.Certification
	if code != exitOK || json.Unmarshal([]byte(out), &c) != nil || c.Evidence == nil || !c.Evidence.Verified || !c.Evidence.ReadBack || c.State != catalog.CertUnknown {
		t.Fatalf("certify test as alice: exit %d\n%s%s", code, out, errOut)
	}
	if after := o.w.freshTruth(o.truth); after.Requests != before.Requests {
		t.Errorf("the fleet received %d requests during a test restore into a twin, want none", after.Requests-before.Requests)
	}
	if code, out, errOut := o.w.fv(o.tokA, "certify", id, "--yes", "--note", "twin matched"); code != exitOK || !strings.Contains(out, "certified") {
		t.Fatalf("certify as alice: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := o.w.fv(o.tokB, "certify", "show", id); code != exitError || !strings.Contains(errOut, "no backup") {
		t.Fatalf("certify show as bob: exit %d\n%s%s", code, out, errOut)
	}
	if _, out, _ := o.w.fv(o.tokA, "backups", "show", id); !strings.Contains(out, "certified by alice") {
		t.Errorf("backups show as alice lacks the certification:\n%s", out)
	}
}

// adminManagesUsers: the admin manages users through the running server; owners may not.
func (o *ownersE2E) adminManagesUsers(t *testing.T) {
	add := func(token string) (int, string) {
		cmd := exec.Command(o.w.bin, "user", "add", "carol", "--role", "operator", "--password-stdin")
		cmd.Dir, cmd.Env, cmd.Stdin = o.w.dir, o.w.env(token), strings.NewReader("a long passphrase for carol\n")
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := add(o.tokA); code != exitError || !strings.Contains(out, "only an admin may") {
		t.Errorf("user add as alice: exit %d\n%s", code, out)
	}
	if code, out := add(o.w.token); code != exitOK {
		t.Fatalf("user add as the admin, server running: exit %d\n%s", code, out)
	}
	if out := o.w.must(exitOK, "user", "list"); !strings.Contains(out, "carol") || !strings.Contains(out, "operator") {
		t.Errorf("user list:\n%s", out)
	}
}

// auditSurvivesKill: audit entries acknowledged before kill -9 are kept.
func (o *ownersE2E) auditSurvivesKill(t *testing.T) {
	if err := o.w.serve.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = o.w.serve.Wait()
	_, out, errOut := o.w.fv(o.w.token, "audit", "--json", "--user", "alice", "--mbr", o.w.mbr)
	var es []catalog.AuditEntry
	if err := json.Unmarshal([]byte(out), &es); err != nil {
		t.Fatalf("audit --json: %v\n%s%s", err, out, errOut)
	}
	var ok, refused int
	for _, e := range es {
		if e.Action == "job.start" && e.Outcome == catalog.AuditOK {
			ok++
		}
		if e.Action == "job.start" && e.Outcome == catalog.AuditRefused && strings.Contains(strings.Join(e.Objects, " "), "new-homes") {
			refused++
		}
	}
	if ok != 1 || refused != 1 {
		t.Errorf("after kill -9: %d accepted and %d refused job starts of alice in the audit log, want 1 and 1:\n%s", ok, refused, out)
	}
}

// exportShowsOwner: the catalog export shows A as the owner of A's backups.
func (o *ownersE2E) exportShowsOwner(t *testing.T) {
	out := o.w.must(exitOK, "catalog", "export", "--format", "json", "--mbr", o.w.mbr)
	var dump struct {
		Pieces []struct {
			Owner string `json:"owner"`
			Group string `json:"backup_group"`
		} `json:"pieces"`
	}
	if err := json.Unmarshal([]byte(out), &dump); err != nil {
		t.Fatalf("catalog export: %v", err)
	}
	n := 0
	for _, p := range dump.Pieces {
		if p.Group == "models-a" {
			n++
			if p.Owner != "alice" {
				t.Errorf("exported piece of models-a: owner %q, want alice", p.Owner)
			}
		}
	}
	if n != 2 {
		t.Errorf("%d pieces of models-a in the export, want 2", n)
	}
}

// asOwner adds an owner and assigns them device groups, on the installation.
func (w *e2eWorld) asOwner(user string, groups []string) {
	w.t.Helper()
	cmd := exec.Command(w.bin, "user", "add", user, "--role", "owner", "--password-stdin", "--mbr", w.mbr)
	cmd.Dir, cmd.Env, cmd.Stdin = w.dir, w.env(""), strings.NewReader("a long passphrase for "+user+"\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		w.t.Fatalf("user add %s: %v\n%s", user, err, out)
	}
	args := []string{"owner", "assign", user, "--mbr", w.mbr}
	for _, g := range groups {
		args = append(args, "--group", g)
	}
	w.must(exitOK, args...)
}

// listDevices asks GET /api/v1/devices with token and returns the ids.
func (w *e2eWorld) listDevices(token string) []string {
	w.t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+w.httpAddr+"/api/v1/devices", nil)
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var ds []apiclient.Device
	if err := json.NewDecoder(resp.Body).Decode(&ds); err != nil || resp.StatusCode != http.StatusOK {
		w.t.Fatalf("GET /api/v1/devices: %d %v", resp.StatusCode, err)
	}
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	sort.Strings(ids)
	return ids
}

// e2eTruth is what sim --truth-out writes.
type e2eTruth struct {
	At       time.Time `json:"at"`
	Requests uint64    `json:"requests"`
	Devices  map[string]struct {
		Writes       int    `json:"writes"`
		SettingsHash string `json:"settings_hash"`
	} `json:"devices"`
}

// freshTruth returns the simulator's ground truth as written after now.
func (w *e2eWorld) freshTruth(path string) e2eTruth {
	w.t.Helper()
	since := time.Now()
	var tr e2eTruth
	e2eWaitFor(w.t, 30*time.Second, "fresh ground truth from the simulator", func() bool {
		b, err := os.ReadFile(path)
		return err == nil && json.Unmarshal(b, &tr) == nil && tr.At.After(since)
	})
	return tr
}

func e2eTokenOf(t *testing.T, out string) string {
	t.Helper()
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "fvt_") {
			return f
		}
	}
	t.Fatalf("no token in:\n%s", out)
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
