package api

import (
	"context"
	"github.com/fleetvault/fleetvault/service"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/settingsdoc"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// The callers of the authorization matrix.
const (
	callNone     = "no token"
	callWrong    = "wrong token"
	callAdmin    = "admin"
	callOperator = "operator"
	callOwnerA   = "owner A on A's"
	callOwnerB   = "owner A on B's"
)

var callers = []string{callNone, callWrong, callAdmin, callOperator, callOwnerA, callOwnerB}

// world is one fixture of the matrix: owners alice (A) and bob (B), each with
// two devices, a device group, a backup group with two backups and a running
// job; an operator; an installation admin token.
type world struct {
	*testInstallation
	tokens map[string]string       // caller -> token
	ids    map[string]string       // "pieceA1"... and "jobA"... -> id
	byUser map[string]ownedObjects // "A", "B"
}

type ownedObjects struct {
	user, device, deviceGroup, backupGroup string
	schedule                               string // backs up deviceGroup into backupGroup
	emptySchedule                          string // backs up an empty device group of the owner's: its run fails at once
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{testInstallation: newInstallation(t, map[string]agent.Transport{"": silentTransport{}, "mqtt": silentTransport{}}), tokens: map[string]string{}, ids: map[string]string{}, byUser: map[string]ownedObjects{
		"A": {user: "alice", device: "a1", deviceGroup: "ga", backupGroup: "bka", schedule: "sched-a", emptySchedule: "sched-a-empty"},
		"B": {user: "bob", device: "b1", deviceGroup: "gb", backupGroup: "bkb", schedule: "sched-b", emptySchedule: "sched-b-empty"},
	}}
	ctx := context.Background()
	for _, u := range []catalog.User{{Name: "alice", Role: catalog.UserOwner}, {Name: "bob", Role: catalog.UserOwner}, {Name: "oscar", Role: catalog.UserOperator}} {
		if err := w.cat.CreateUser(u); err != nil { // no password: the matrix uses tokens
			t.Fatal(err)
		}
	}
	for _, tk := range []struct{ caller, name, user string }{
		{callAdmin, "admin", ""}, {callOperator, "oscar-token", "oscar"}, {callOwnerA, "alice-a", "alice"}, {callOwnerB, "alice-b", "alice"},
	} {
		tok, err := w.testInstallation.tokens.CreateFor(tk.name, tk.user)
		if err != nil {
			t.Fatal(err)
		}
		w.tokens[tk.caller] = tok
	}
	w.tokens[callWrong] = "fvt_" + strings.Repeat("x", 43)
	if err := w.cat.PutProfile(settingsdoc.Profile{Name: "keep-name", Keep: []string{"/name"}}); err != nil {
		t.Fatal(err)
	}
	settings, err := agent.EncodeSettings(agent.Settings{"setpoint": 21})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := agent.EncodeSettings(agent.Settings{"setpoint": 19})
	if err := w.cat.PutNotifyPrefs(catalog.NotifyPrefs{User: "oscar", Webhook: "https://chat.example.com/hook", WebhookSecret: "oscar's-secret-0123456789", Mode: catalog.NotifyAlways}); err != nil {
		t.Fatal(err)
	}
	for key, o := range w.byUser {
		devs := []catalog.Device{{ID: o.device, Owner: o.user, Identifier: "mqtt://" + o.device}, {ID: o.device[:1] + "2", Owner: o.user, Identifier: "mqtt://" + o.device[:1] + "2"}}
		if err := w.cat.PutDevices(ctx, devs); err != nil {
			t.Fatal(err)
		}
		if err := w.cat.CreateGroup(o.deviceGroup, catalog.Group{Kind: catalog.GroupDevices, Owner: o.user}); err != nil {
			t.Fatal(err)
		}
		if err := w.cat.AddMembers(o.deviceGroup, []string{devs[0].ID, devs[1].ID}); err != nil {
			t.Fatal(err)
		}
		if err := w.cat.CreateGroup(o.backupGroup, catalog.Group{Kind: catalog.GroupBackup, Owner: o.user}); err != nil {
			t.Fatal(err)
		}
		ps, err := w.cat.Ingest(ctx, []catalog.NewPiece{
			{Client: devs[0].ID, Name: "settings", Type: "settings", Owner: o.user, Group: o.backupGroup, Location: "mqtt://" + devs[0].ID, Tag: zoneTag(t, key), Content: settings},
			{Client: devs[1].ID, Name: "settings", Type: "settings", Owner: o.user, Group: o.backupGroup, Location: "mqtt://" + devs[1].ID, Tag: zoneTag(t, key), Content: other},
		})
		if err != nil {
			t.Fatal(err)
		}
		w.ids["piece1"+key], w.ids["piece2"+key] = ps[0].ID, ps[1].ID
		j, err := w.eng.Start(ctx, grouprestore.Spec{Kind: grouprestore.KindBackup, Source: o.deviceGroup, Target: o.backupGroup})
		if err != nil {
			t.Fatal(err)
		}
		w.ids["job"+key] = j.ID()
		if err := w.cat.CreateGroup(o.deviceGroup+"-empty", catalog.Group{Kind: catalog.GroupDevices, Owner: o.user}); err != nil {
			t.Fatal(err)
		}
		if err := w.cat.SetKeepRules([]catalog.KeepRule{{Group: o.backupGroup, Last: 1}}); err != nil {
			t.Fatal(err)
		}
		for _, sc := range []catalog.Schedule{
			{Name: o.schedule, DeviceGroup: o.deviceGroup, BackupGroup: o.backupGroup, Cron: "0 3 * * *", RPO: time.Hour},
			{Name: o.emptySchedule, DeviceGroup: o.deviceGroup + "-empty", BackupGroup: o.backupGroup, Cron: "0 3 * * *"},
		} {
			if err := w.cat.PutSchedule(sc); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.cat.PutNotifyPrefs(catalog.NotifyPrefs{User: o.user, Email: o.user + "@example.com", Mode: catalog.NotifyOnFailure}); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// state is everything a refused write must leave as it was.
type state struct {
	Devices  []catalog.Device
	Groups   map[string][]string
	Owners   map[string]string
	Users    []catalog.User
	Pieces   int
	Jobs     map[string]grouprestore.JobState
	Profiles []settingsdoc.Profile
	Attached map[string]string // backup group -> its profile
	Tokens   []service.TokenInfo
	Certs    map[string]catalog.Certification
	Policies []catalog.CertPolicy
	// Schedules as defined (a run's record is left out: a run that could
	// not start is still a run) and the keep rules.
	Schedules []catalog.Schedule
	Keep      []catalog.KeepRule
}

func (w *world) state(t *testing.T) state {
	t.Helper()
	s := state{Groups: map[string][]string{}, Owners: map[string]string{}, Jobs: map[string]grouprestore.JobState{}}
	if err := w.cat.Devices(func(d catalog.Device) error { s.Devices = append(s.Devices, d); return nil }); err != nil {
		t.Fatal(err)
	}
	gs, err := w.cat.Groups()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gs {
		if s.Groups[g.Name], err = w.cat.Members(g.Name); err != nil {
			t.Fatal(err)
		}
		s.Owners[g.Name] = g.Owner
	}
	if s.Users, err = w.cat.Users(); err != nil {
		t.Fatal(err)
	}
	ps, err := w.cat.Pieces(catalog.Query{})
	if err != nil {
		t.Fatal(err)
	}
	s.Pieces = len(ps)
	if s.Profiles, err = w.cat.Profiles(); err != nil {
		t.Fatal(err)
	}
	s.Attached = map[string]string{}
	for _, o := range w.byUser {
		gp, err := w.cat.GroupProfile(o.backupGroup)
		if err != nil {
			t.Fatal(err)
		}
		s.Attached[o.backupGroup] = gp.Name
	}
	if s.Tokens, err = w.testInstallation.tokens.List(); err != nil {
		t.Fatal(err)
	}
	if s.Certs, err = w.cat.Certifications(); err != nil {
		t.Fatal(err)
	}
	if s.Policies, _, err = w.cat.CertPolicies(); err != nil {
		t.Fatal(err)
	}
	if s.Schedules, err = w.cat.Schedules(); err != nil {
		t.Fatal(err)
	}
	for i := range s.Schedules {
		s.Schedules[i].Last = catalog.ScheduleRun{}
	}
	if s.Keep, err = w.cat.KeepRules(); err != nil {
		t.Fatal(err)
	}
	recs, err := w.eng.Jobs()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		j, err := w.eng.Job(r.ID)
		if err != nil {
			t.Fatal(err)
		}
		s.Jobs[r.ID] = j.Progress().State
	}
	return s
}

// cell is one request of the matrix: for owner A on B's objects, the
// objects are B's; otherwise A's.
type cell struct {
	method, path, body, contentType string
}

// want is the status each caller gets on a route.
type want map[string]int

func all(status int) want {
	return want{callNone: status, callWrong: status, callAdmin: status, callOperator: status, callOwnerA: status, callOwnerB: status}
}

// authed: 401 without a valid token, then admin, operator, owner on own, owner on other's.
func authed(admin, operator, ownerOwn, ownerOther int) want {
	return want{callNone: 401, callWrong: 401, callAdmin: admin, callOperator: operator, callOwnerA: ownerOwn, callOwnerB: ownerOther}
}

// matrixRoutes is the expected status of every route for every caller, and
// the request that exercises it (objects filled in per caller).
func matrixRoutes() []struct {
	route string
	req   func(o ownedObjects, ids func(string) string) cell
	want  want
} {
	p := APIPrefix
	return []struct {
		route string
		req   func(o ownedObjects, ids func(string) string) cell
		want  want
	}{
		{"GET /healthz", func(ownedObjects, func(string) string) cell { return cell{method: "GET", path: "/healthz"} }, all(200)},
		// The matrix's requests come from 192.0.2.1, not loopback: /metrics needs
		// a token there (TestMetricsFromLoopback covers the server's own host).
		{"GET /metrics", func(ownedObjects, func(string) string) cell { return cell{method: "GET", path: "/metrics"} }, authed(200, 200, 403, 403)},
		{"GET " + p + "/devices", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "GET", path: p + "/devices?group=" + o.deviceGroup}
		}, authed(200, 200, 200, 404)},
		{"POST " + p + "/devices", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "POST", path: p + "/devices", body: `{"id": "new1", "group": "` + o.deviceGroup + `"}`}
		}, authed(201, 201, 403, 403)},
		{"POST " + p + "/devices/import", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "POST", path: p + "/devices/import", body: "id,group\nnew1," + o.deviceGroup + "\n", contentType: "text/csv"}
		}, authed(201, 201, 403, 403)},
		{"GET " + p + "/devices/{id}", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "GET", path: p + "/devices/" + o.device}
		}, authed(200, 200, 200, 404)},
		{"DELETE " + p + "/devices/{id}", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "DELETE", path: p + "/devices/" + o.device}
		}, authed(204, 204, 403, 404)},
		{"GET " + p + "/groups", func(ownedObjects, func(string) string) cell { return cell{method: "GET", path: p + "/groups"} }, authed(200, 200, 200, 200)},
		{"POST " + p + "/groups", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "POST", path: p + "/groups", body: `{"name": "new-group", "owner": "` + o.user + `"}`}
		}, authed(201, 201, 403, 403)},
		{"GET " + p + "/groups/{name}", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "GET", path: p + "/groups/" + o.deviceGroup + "?members=true"}
		}, authed(200, 200, 200, 404)},
		{"POST " + p + "/groups/{name}/members", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "POST", path: p + "/groups/" + o.deviceGroup + "/members", body: `{"devices": ["` + o.device + `"]}`}
		}, authed(200, 200, 403, 404)},
		{"DELETE " + p + "/groups/{name}/members", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "DELETE", path: p + "/groups/" + o.deviceGroup + "/members", body: `{"devices": ["` + o.device + `"]}`}
		}, authed(200, 200, 403, 404)},
		{"GET " + p + "/backups", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "GET", path: p + "/backups?group=" + o.backupGroup}
		}, authed(200, 200, 200, 200)},
		{"GET " + p + "/backups/diff", func(_ ownedObjects, ids func(string) string) cell {
			return cell{method: "GET", path: p + "/backups/diff?a=" + ids("piece1") + "&b=" + ids("piece2")}
		}, authed(200, 200, 200, 404)},
		{"GET " + p + "/backups/{id}", func(_ ownedObjects, ids func(string) string) cell {
			return cell{method: "GET", path: p + "/backups/" + ids("piece1")}
		}, authed(200, 200, 200, 404)},
		{"PATCH " + p + "/devices/{id}", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "PATCH", path: p + "/devices/" + o.device, body: `{"category": "critical"}`}
		}, authed(200, 200, 403, 404)},
		{"GET " + p + "/backups/{id}/certification", func(_ ownedObjects, ids func(string) string) cell {
			return cell{method: "GET", path: p + "/backups/" + ids("piece1") + "/certification"}
		}, authed(200, 200, 200, 404)},
		{"PUT " + p + "/backups/{id}/certification", func(_ ownedObjects, ids func(string) string) cell {
			return cell{method: "PUT", path: p + "/backups/" + ids("piece1") + "/certification", body: `{"state": "certified", "note": "restored fine"}`}
		}, authed(200, 403, 200, 404)},
		// Into the backup's own device, which is not a test bench: refused
		// (409) once the caller may see both, before anything is written.
		{"POST " + p + "/backups/{id}/test-restore", func(o ownedObjects, ids func(string) string) cell {
			return cell{method: "POST", path: p + "/backups/" + ids("piece1") + "/test-restore", body: `{"into": "` + o.device + `"}`}
		}, authed(409, 409, 409, 404)},
		{"GET " + p + "/certifications", func(ownedObjects, func(string) string) cell {
			return cell{method: "GET", path: p + "/certifications"}
		}, authed(200, 200, 200, 200)},
		{"GET " + p + "/groups/{name}/certification", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "GET", path: p + "/groups/" + o.backupGroup + "/certification"}
		}, authed(200, 200, 200, 404)},
		{"GET " + p + "/certification-policies", func(ownedObjects, func(string) string) cell {
			return cell{method: "GET", path: p + "/certification-policies"}
		}, authed(200, 200, 200, 200)},
		{"PUT " + p + "/certification-policies/{category}", func(ownedObjects, func(string) string) cell {
			return cell{method: "PUT", path: p + "/certification-policies/critical", body: `{"lapse_days": 30, "remind_days": 3}`}
		}, authed(200, 403, 403, 403)},
		{"GET " + p + "/jobs", func(ownedObjects, func(string) string) cell { return cell{method: "GET", path: p + "/jobs"} }, authed(200, 200, 200, 200)},
		{"POST " + p + "/jobs", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "POST", path: p + "/jobs", body: `{"kind": "backup", "source": "` + o.deviceGroup + `", "target": "` + o.backupGroup + `"}`}
		}, authed(201, 201, 201, 404)},
		{"GET " + p + "/jobs/{id}", func(_ ownedObjects, ids func(string) string) cell {
			return cell{method: "GET", path: p + "/jobs/" + ids("job")}
		}, authed(200, 200, 200, 404)},
		{"GET " + p + "/jobs/{id}/events", func(_ ownedObjects, ids func(string) string) cell {
			return cell{method: "GET", path: p + "/jobs/" + ids("job") + "/events"}
		}, authed(200, 200, 200, 404)},
		{"POST " + p + "/jobs/{id}/cancel", func(_ ownedObjects, ids func(string) string) cell {
			return cell{method: "POST", path: p + "/jobs/" + ids("job") + "/cancel"}
		}, authed(200, 200, 200, 404)},
		{"POST " + p + "/jobs/{id}/pause", func(_ ownedObjects, ids func(string) string) cell {
			return cell{method: "POST", path: p + "/jobs/" + ids("job") + "/pause"}
		}, authed(200, 200, 200, 404)},
		{"POST " + p + "/jobs/{id}/resume", func(_ ownedObjects, ids func(string) string) cell {
			return cell{method: "POST", path: p + "/jobs/" + ids("job") + "/resume"}
		}, authed(200, 200, 200, 404)},
		{"POST " + p + "/jobs/{id}/remediate", func(_ ownedObjects, ids func(string) string) cell {
			return cell{method: "POST", path: p + "/jobs/" + ids("job") + "/remediate"} // a backup job: only drifts are remediated
		}, authed(400, 400, 400, 404)},
		{"GET " + p + "/profiles", func(ownedObjects, func(string) string) cell { return cell{method: "GET", path: p + "/profiles"} }, authed(200, 200, 200, 200)},
		{"GET " + p + "/profiles/{name}", func(ownedObjects, func(string) string) cell {
			return cell{method: "GET", path: p + "/profiles/keep-name"}
		}, authed(200, 200, 200, 200)},
		{"PUT " + p + "/profiles/{name}", func(ownedObjects, func(string) string) cell {
			return cell{method: "PUT", path: p + "/profiles/keep-network", body: `{"keep": ["/network/*"]}`}
		}, authed(200, 200, 403, 403)},
		{"PUT " + p + "/groups/{name}/profile", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "PUT", path: p + "/groups/" + o.backupGroup + "/profile", body: `{"profile": "keep-name"}`}
		}, authed(200, 200, 403, 403)},
		{"GET " + p + "/schedules", func(ownedObjects, func(string) string) cell { return cell{method: "GET", path: p + "/schedules"} }, authed(200, 200, 200, 200)},
		{"POST " + p + "/schedules", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "POST", path: p + "/schedules", body: `{"name": "new-schedule", "device_group": "` + o.deviceGroup + `", "backup_group": "` + o.backupGroup + `", "cron": "*/15 * * * *", "rpo": "1h", "keep": {"last": 3}}`}
		}, authed(201, 201, 403, 403)},
		{"GET " + p + "/schedules/{name}", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "GET", path: p + "/schedules/" + o.schedule}
		}, authed(200, 200, 200, 404)},
		{"DELETE " + p + "/schedules/{name}", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "DELETE", path: p + "/schedules/" + o.schedule}
		}, authed(204, 204, 403, 403)},
		{"POST " + p + "/schedules/{name}/run", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "POST", path: p + "/schedules/" + o.emptySchedule + "/run"} // an empty device group: its job cannot start
		}, authed(400, 400, 403, 403)},
		{"GET " + p + "/schedules/{name}/prune-preview", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "GET", path: p + "/schedules/" + o.schedule + "/prune-preview"}
		}, authed(200, 200, 200, 404)},
		{"GET " + p + "/rpo", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "GET", path: p + "/rpo?group=" + o.deviceGroup}
		}, authed(200, 200, 200, 404)},
		{"GET " + p + "/catalog/export", func(ownedObjects, func(string) string) cell {
			return cell{method: "GET", path: p + "/catalog/export?format=json"}
		}, authed(200, 200, 403, 403)},
		{"GET " + p + "/audit", func(ownedObjects, func(string) string) cell { return cell{method: "GET", path: p + "/audit"} }, authed(200, 403, 403, 403)},
		{"GET " + p + "/users", func(ownedObjects, func(string) string) cell { return cell{method: "GET", path: p + "/users"} }, authed(200, 403, 403, 403)},
		{"POST " + p + "/users", func(ownedObjects, func(string) string) cell {
			return cell{method: "POST", path: p + "/users", body: `{"name": "carol", "role": "owner", "password": "a long passphrase"}`}
		}, authed(201, 403, 403, 403)},
		{"POST " + p + "/users/{name}/password", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "POST", path: p + "/users/" + o.user + "/password", body: `{"password": "another long passphrase"}`}
		}, authed(204, 403, 403, 403)},
		{"POST " + p + "/users/{name}/disable", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "POST", path: p + "/users/" + o.user + "/disable"}
		}, authed(204, 403, 403, 403)},
		{"GET " + p + "/users/{name}/notifications", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "GET", path: p + "/users/" + o.user + "/notifications"}
		}, authed(200, 403, 200, 403)},
		{"PUT " + p + "/users/{name}/notifications", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "PUT", path: p + "/users/" + o.user + "/notifications", body: `{"mode": "always", "email": "` + o.user + `@example.net"}`}
		}, authed(200, 403, 200, 403)},
		{"POST " + p + "/users/{name}/notifications/test", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "POST", path: p + "/users/" + o.user + "/notifications/test"}
		}, authed(200, 403, 200, 403)},
		{"GET " + p + "/me/notifications", func(ownedObjects, func(string) string) cell {
			return cell{method: "GET", path: p + "/me/notifications"}
		}, authed(404, 200, 200, 200)},
		{"PUT " + p + "/me/notifications", func(ownedObjects, func(string) string) cell {
			return cell{method: "PUT", path: p + "/me/notifications", body: `{"mode": "never"}`}
		}, authed(404, 200, 200, 200)},
		{"POST " + p + "/me/notifications/test", func(ownedObjects, func(string) string) cell {
			return cell{method: "POST", path: p + "/me/notifications/test"}
		}, authed(404, 200, 200, 200)},
		{"GET " + p + "/notifications/undeliverable", func(ownedObjects, func(string) string) cell {
			return cell{method: "GET", path: p + "/notifications/undeliverable"}
		}, authed(200, 403, 403, 403)},
		{"GET " + p + "/stats", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "GET", path: p + "/stats?owner=" + o.user}
		}, authed(200, 200, 200, 403)},
		{"PUT " + p + "/stats/retention", func(ownedObjects, func(string) string) cell {
			return cell{method: "PUT", path: p + "/stats/retention", body: `{"days": 30}`}
		}, authed(204, 403, 403, 403)},
		{"POST " + p + "/owners/{user}/assign", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "POST", path: p + "/owners/" + o.user + "/assign", body: `{"devices": ["` + o.device + `"]}`}
		}, authed(204, 403, 403, 403)},
		{"POST " + p + "/owners/{user}/unassign", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "POST", path: p + "/owners/" + o.user + "/unassign", body: `{"devices": ["` + o.device + `"]}`}
		}, authed(204, 403, 403, 403)},
		{"POST " + p + "/tokens", func(o ownedObjects, _ func(string) string) cell {
			return cell{method: "POST", path: p + "/tokens", body: `{"name": "new-token", "user": "` + o.user + `"}`}
		}, authed(201, 403, 403, 403)},
	}
}

// TestAuthorizationMatrix drives every route of the API with every kind of
// caller, each cell on a fresh installation: the status is the expected one;
// a refused write changes nothing; every write is in the audit log once,
// with its user and outcome; and every status is documented in the OpenAPI
// file for that route.
func TestAuthorizationMatrix(t *testing.T) {
	documented := openAPIStatuses(t)
	covered := map[string]bool{}
	shared := newWorld(t) // reads change nothing: they share one installation
	for _, rt := range matrixRoutes() {
		covered[rt.route] = true
		for _, caller := range callers {
			t.Run(rt.route+"/"+caller, func(t *testing.T) {
				t.Parallel() // the cells wait on disk syncs, not on the CPU
				w := shared
				if !strings.HasPrefix(rt.route, "GET ") {
					w = newWorld(t) // a write gets an installation of its own
				}
				key := "A"
				if caller == callOwnerB {
					key = "B"
				}
				c := rt.req(w.byUser[key], func(name string) string { return w.ids[name+key] })
				before := w.state(t)
				auditBefore, _ := w.cat.Audit(catalog.AuditQuery{})
				code, body := w.do(t, c, w.tokens[caller])
				if code != rt.want[caller] {
					t.Fatalf("%s %s as %s: status %d, want %d: %s", c.method, c.path, caller, code, rt.want[caller], body)
				}
				if !documented[rt.route][code] {
					t.Errorf("docs/openapi.yaml does not document status %d for %s", code, rt.route)
				}
				if c.method == "GET" {
					w.checkListScope(t, caller, c, body)
					return
				}
				if code >= 400 {
					if after := w.state(t); !reflect.DeepEqual(before, after) {
						t.Errorf("a refused %s %s changed the installation:\nbefore %+v\nafter  %+v", c.method, c.path, before, after)
					}
				}
				w.checkAudited(t, auditBefore, caller, code)
			})
		}
	}
	for _, rt := range routes() {
		if key := rt.method + " " + rt.pattern; !covered[key] {
			t.Errorf("route %s is not in the authorization matrix", key)
		}
	}
}

// do sends c with token and returns the status and the body. An event
// stream is asked with a cancelled context: its status is all the cell needs.
func (w *world) do(t *testing.T, c cell, token string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
	req.RemoteAddr = "192.0.2.7:4242"
	if strings.HasSuffix(c.path, "/events") {
		ctx, cancel := context.WithCancel(req.Context())
		cancel()
		req = req.WithContext(ctx)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	ct := c.contentType
	if ct == "" && c.body != "" {
		ct = "application/json"
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	rec := httptest.NewRecorder()
	w.api.Handler().ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// checkListScope: what owner A reads never names one of B's objects, and a
// listing of A's own holds them.
func (w *world) checkListScope(t *testing.T, caller string, c cell, body string) {
	t.Helper()
	if caller != callOwnerA && caller != callOwnerB {
		return
	}
	b := w.byUser["B"]
	for _, name := range []string{b.user, b.device, "b2", b.deviceGroup, b.backupGroup, b.schedule, b.emptySchedule, w.ids["piece1B"], w.ids["piece2B"], w.ids["jobB"]} {
		if strings.Contains(body, `"`+name+`"`) {
			t.Errorf("owner A's %s %s names B's %q: %s", c.method, c.path, name, body)
		}
	}
	if caller != callOwnerA {
		return
	}
	a := w.byUser["A"]
	for suffix, own := range map[string]string{"/groups": a.deviceGroup, "/jobs": w.ids["jobA"], "/backups?group=bka": w.ids["piece1A"], "/devices?group=ga": a.device} {
		if strings.HasSuffix(c.path, suffix) && !strings.Contains(body, `"`+own+`"`) {
			t.Errorf("owner A's %s %s lacks their own %q: %s", c.method, c.path, own, body)
		}
	}
}

// checkAudited: one new audit entry, with the caller's user and the outcome
// the status says.
func (w *world) checkAudited(t *testing.T, before []catalog.AuditEntry, caller string, code int) {
	t.Helper()
	after, err := w.cat.Audit(catalog.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before)+1 {
		t.Fatalf("%d audit entries were written, want 1: %+v", len(after)-len(before), after[len(before):])
	}
	e := after[len(after)-1]
	user := map[string]string{callNone: "", callWrong: "", callAdmin: "admin", callOperator: "oscar", callOwnerA: "alice", callOwnerB: "alice"}[caller]
	outcome := catalog.AuditRefused
	switch {
	case code < 300:
		outcome = catalog.AuditOK
	case code == http.StatusUnauthorized:
		outcome = catalog.AuditUnauthenticated
	}
	if e.User != user || e.Outcome != outcome || e.Addr != "192.0.2.7:4242" || e.Time.IsZero() || e.Action == "" {
		t.Errorf("audit entry %+v, want user %q, outcome %s, addr 192.0.2.7:4242", e, user, outcome)
	}
}

// openAPIStatuses reads the statuses docs/openapi.yaml documents per route.
func openAPIStatuses(t *testing.T) map[string]map[int]bool {
	t.Helper()
	b, err := os.ReadFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[int]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if !httpMethods[method] {
				continue
			}
			var o struct {
				Responses map[string]yaml.Node `yaml:"responses"`
			}
			if err := op.Decode(&o); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			key := strings.ToUpper(method) + " " + path
			out[key] = map[int]bool{}
			for code := range o.Responses {
				n, err := strconv.Atoi(code)
				if err != nil {
					t.Fatalf("%s: response %q is not a status", key, code)
				}
				out[key][n] = true
			}
		}
	}
	return out
}

func zoneTag(t *testing.T, zone string) tagmatch.Tag {
	t.Helper()
	tag, err := tagmatch.ParseKV("zone=" + zone)
	if err != nil {
		t.Fatal(err)
	}
	return tag
}
