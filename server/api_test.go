package server

import (
	"github.com/fleetvault/fleetvault/apiclient"

	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetvault/fleetvault/catalog"
)

// apiEnv is a started server with its API on an httptest server and a
// client holding an admin token.
type apiEnv struct {
	s      *Server
	ts     *httptest.Server
	c      *apiclient.Client
	token  string
	ctx    context.Context
	cancel context.CancelFunc
}

func startAPI(t *testing.T) *apiEnv {
	t.Helper()
	s := startTestServer(t)
	token, err := s.Tokens().Create("admin")
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &apiEnv{s: s, ts: ts, c: apiclient.NewClient(ts.URL, token), token: token, ctx: ctx, cancel: cancel}
}

// raw sends a request with an optional token and returns the status and the
// body, or for a JSON error the error's message.
func (e *apiEnv) raw(t *testing.T, method, path, token, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var eb apiclient.ErrorBody
	if resp.StatusCode >= 400 && json.Unmarshal(b, &eb) == nil && eb.Error != "" {
		return resp.StatusCode, eb.Error // the message, unescaped
	}
	return resp.StatusCode, string(b)
}

func TestAPIAuth(t *testing.T) {
	e := startAPI(t)
	body := `[{"id":"intruder-1"}]`
	tests := []struct {
		name   string
		header string
	}{
		{"no header", ""},
		{"not bearer", "Basic YWRtaW46YWRtaW4="},
		{"empty bearer", "Bearer "},
		{"wrong token", "Bearer fvt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"device secret", "Bearer " + "not-a-token"},
		{"token with junk", "Bearer " + e.token + "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, rq := range []struct{ method, path string }{{"POST", "/api/v1/devices"}, {"GET", "/api/v1/devices"}, {"POST", "/api/v1/groups"}, {"GET", "/api/v1/jobs/x"}} {
				req, _ := http.NewRequest(rq.method, e.ts.URL+rq.path, strings.NewReader(body))
				if tt.header != "" {
					req.Header.Set("Authorization", tt.header)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				var eb apiclient.ErrorBody
				err = json.NewDecoder(resp.Body).Decode(&eb)
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized || err != nil || eb.Error == "" {
					t.Fatalf("%s %s: status %d, body %+v (%v), want 401 with a JSON error", rq.method, rq.path, resp.StatusCode, eb, err)
				}
			}
		})
	}
	if _, err := e.s.Catalog.Device("intruder-1"); err == nil {
		t.Fatal("an unauthenticated request added a device")
	}
	t.Run("revoked token", func(t *testing.T) {
		tok, err := e.s.Tokens().Create("ci")
		if err != nil {
			t.Fatal(err)
		}
		if code, _ := e.raw(t, "GET", "/api/v1/devices", tok, "", ""); code != 200 {
			t.Fatalf("fresh token: %d", code)
		}
		if err := e.s.Tokens().Revoke("ci"); err != nil {
			t.Fatal(err)
		}
		if code, _ := e.raw(t, "GET", "/api/v1/devices", tok, "", ""); code != 401 {
			t.Fatalf("revoked token: %d, want 401", code)
		}
	})
	t.Run("open routes", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/metrics"} {
			if code, _ := e.raw(t, "GET", p, "", "", ""); code != 200 {
				t.Fatalf("%s: %d", p, code)
			}
		}
	})
}

func TestAPIDevices(t *testing.T) {
	e := startAPI(t)
	ctx := e.ctx
	res, err := e.c.AddDevices(ctx, []apiclient.NewDevice{
		{ID: "home1-climate", Tag: tag("North"), Domain: "Europe", Owner: "builder"},
		{ID: "home2-climate", Password: "given-secret", Identifier: "coap://127.0.0.1:5683", Group: "new-homes"},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Devices) != 2 || res.Devices[0].Password == "" || res.Devices[1].Password != "" {
		t.Fatalf("add: %+v: want a generated password for the first device only", res)
	}
	if len(res.GroupsCreated) != 1 || res.GroupsCreated[0] != "new-homes" {
		t.Fatalf("groups created: %v", res.GroupsCreated)
	}
	d, err := e.s.Catalog.Device("home1-climate")
	if err != nil || d.PasswordHash == "" || strings.Contains(d.PasswordHash, res.Devices[0].Password) {
		t.Fatalf("stored device %+v %v", d, err)
	}
	got, err := e.c.Device(ctx, "home1-climate")
	if err != nil || !got.HasPassword || got.Tag.String() != tag("North").String() || got.Domain != "Europe" {
		t.Fatalf("get: %+v %v", got, err)
	}
	tests := []struct {
		name   string
		path   string
		body   string
		status int
		want   string
	}{
		{"exists", "/api/v1/devices", `[{"id":"home1-climate"}]`, 409, "already exist"},
		{"bad id", "/api/v1/devices", `[{"id":"a/b"}]`, 400, `"id"`},
		{"bad identifier", "/api/v1/devices", `[{"id":"ok-1","identifier":"mqtt://x?READ"}]`, 400, `"identifier"`},
		{"unknown field", "/api/v1/devices", `[{"id":"ok-1","colour":"red"}]`, 400, `"colour"`},
		{"wrong type", "/api/v1/devices", `[{"id":5}]`, 400, `"id"`},
		{"empty", "/api/v1/devices", ``, 400, "empty"},
		{"twice", "/api/v1/devices", `[{"id":"x1"},{"id":"x1"}]`, 400, "twice"},
		{"single object", "/api/v1/devices", `{"id":"solo-1"}`, 201, "solo-1"},
		{"replace", "/api/v1/devices?replace=true", `[{"id":"home1-climate","password":"new-secret-home1"}]`, 201, "home1-climate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := e.raw(t, "POST", tt.path, e.token, "application/json", tt.body)
			if code != tt.status || !strings.Contains(body, tt.want) {
				t.Fatalf("status %d body %s; want %d containing %q", code, body, tt.status, tt.want)
			}
		})
	}
	list, err := e.c.Devices(ctx, "new-homes")
	if err != nil || len(list) != 1 || list[0].ID != "home2-climate" {
		t.Fatalf("list group: %+v %v", list, err)
	}
	all, err := e.c.Devices(ctx, "")
	if err != nil || len(all) != 3 {
		t.Fatalf("list: %+v %v", all, err)
	}
	page, err := e.c.DevicesPage(ctx, "", 2)
	if err != nil || len(page) != 2 || page[0].ID != "home1-climate" || page[1].ID != "home2-climate" {
		t.Fatalf("page 1: %+v %v", page, err)
	}
	page, err = e.c.DevicesPage(ctx, page[1].ID, 2)
	if err != nil || len(page) != 1 || page[0].ID != "solo-1" {
		t.Fatalf("page 2: %+v %v", page, err)
	}
	if code, _ := e.raw(t, "GET", "/api/v1/devices?limit=-1", e.token, "", ""); code != 400 {
		t.Fatalf("bad limit: %d", code)
	}
	_, err = e.c.Device(ctx, "home1-climat")
	if apiclient.StatusOf(err) != 404 || !strings.Contains(err.Error(), `did you mean "home1-climate"?`) {
		t.Fatalf("unknown device: %v", err)
	}
	if err := e.c.DeleteDevice(ctx, "home2-climate"); err != nil {
		t.Fatal(err)
	}
	if g, err := e.c.Group(ctx, "new-homes", true); err != nil || g.MemberCount != 0 {
		t.Fatalf("after delete: %+v %v", g, err)
	}
	if err := e.c.DeleteDevice(ctx, "home2-climate"); apiclient.StatusOf(err) != 404 {
		t.Fatalf("delete twice: %v", err)
	}
}

func TestAPIImport(t *testing.T) {
	tests := []struct {
		name        string
		file        string
		contentType string
		ids         []string
		group       string
	}{
		{"csv", "devices.csv", "text/csv", []string{"home1-climate", "home2-climate", "home3-lock"}, "new-homes"},
		{"yaml", "devices.yaml", "application/yaml", []string{"ref-north", "ref-south", "home4-climate"}, "model-house"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startAPI(t)
			f, err := os.Open(filepath.Join("..", "api", "testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			res, err := e.c.ImportDevices(e.ctx, tt.contentType, f, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Devices) != len(tt.ids) {
				t.Fatalf("imported %+v, want %v", res, tt.ids)
			}
			for _, id := range tt.ids {
				if _, err := e.s.Catalog.Device(id); err != nil {
					t.Errorf("%s: %v", id, err)
				}
			}
			ids, err := e.s.Catalog.Members(tt.group)
			if err != nil || len(ids) < 2 {
				t.Fatalf("group %s: %v %v", tt.group, ids, err)
			}
			d, _ := e.c.Device(e.ctx, tt.ids[0])
			if v, _ := d.Tag.Get("zone"); v == "" {
				t.Errorf("%s: tag %v has no zone", tt.ids[0], d.Tag)
			}
		})
	}
	t.Run("errors", func(t *testing.T) {
		e := startAPI(t)
		bad := []struct {
			name, ct, body string
			status         int
			want           string
		}{
			{"no content type", "", "id\nx", 415, "Content-Type"},
			{"xml", "application/xml", "<x/>", 415, "text/csv"},
			{"csv unknown column", "text/csv", "id,colour\nx,red\n", 400, `"colour"`},
			{"csv no id", "text/csv", "password\nx\n", 400, "no id column"},
			{"csv bad tag", "text/csv", "id,tag\nx,\"zone\"\n", 400, "line 2"},
			{"yaml unknown key", "application/yaml", "- id: x\n  colour: red\n", 400, `"colour"`},
			{"yaml no id", "application/yaml", "- password: x\n", 400, "no id"},
			{"yaml not a list", "application/yaml", "id: x\n", 400, "unknown key"},
			{"yaml syntax", "application/yaml", "- id: [\n", 400, "YAML"},
		}
		for _, b := range bad {
			t.Run(b.name, func(t *testing.T) {
				code, body := e.raw(t, "POST", "/api/v1/devices/import", e.token, b.ct, b.body)
				if code != b.status || !strings.Contains(body, b.want) {
					t.Fatalf("status %d body %s; want %d containing %q", code, body, b.status, b.want)
				}
			})
		}
		n := 0
		_ = e.s.Catalog.Devices(func(catalog.Device) error { n++; return nil })
		if n != 0 {
			t.Fatalf("failed imports left %d devices", n)
		}
	})
}

func TestAPIGroups(t *testing.T) {
	e := startAPI(t)
	ctx := e.ctx
	if _, err := e.c.AddDevices(ctx, []apiclient.NewDevice{{ID: "h1"}, {ID: "h2"}, {ID: "h3"}}, false); err != nil {
		t.Fatal(err)
	}
	g, err := e.c.CreateGroup(ctx, apiclient.NewGroup{Name: "new-homes", Kind: "devices", Owner: "builder", Description: "Backup Group of Devices"})
	if err != nil || g.Name != "new-homes" {
		t.Fatalf("create: %+v %v", g, err)
	}
	if _, err := e.c.CreateGroup(ctx, apiclient.NewGroup{Name: "new-homes"}); apiclient.StatusOf(err) != 409 {
		t.Fatalf("create twice: %v", err)
	}
	if _, err := e.c.CreateGroup(ctx, apiclient.NewGroup{Name: "x", Kind: "people"}); apiclient.StatusOf(err) != 400 || !strings.Contains(err.Error(), `"kind"`) {
		t.Fatalf("bad kind: %v", err)
	}
	if _, err := e.c.AddMembers(ctx, "new-homes", []string{"h1", "h2", "h3"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.AddMembers(ctx, "new-homes", []string{"h9"}); apiclient.StatusOf(err) != 404 {
		t.Fatalf("unknown member: %v", err)
	}
	r, err := e.c.RemoveMembers(ctx, "new-homes", []string{"h2"})
	if err != nil || r.MemberCount != 2 {
		t.Fatalf("remove: %+v %v", r, err)
	}
	if _, err := e.c.RemoveMembers(ctx, "new-homes", []string{"h2"}); apiclient.StatusOf(err) != 404 {
		t.Fatalf("remove a non-member: %v", err)
	}
	g, err = e.c.Group(ctx, "new-homes", true)
	if err != nil || g.MemberCount != 2 || len(g.Members) != 2 || g.Owner != "builder" {
		t.Fatalf("get: %+v %v", g, err)
	}
	_, err = e.c.Group(ctx, "new-hmes", false)
	if apiclient.StatusOf(err) != 404 || !strings.Contains(err.Error(), `no group "new-hmes"; did you mean "new-homes"?`) {
		t.Fatalf("typo: %v", err)
	}
	gs, err := e.c.Groups(ctx)
	if err != nil || len(gs) != 1 || gs[0].MemberCount != 2 {
		t.Fatalf("list: %+v %v", gs, err)
	}
	if code, body := e.raw(t, "GET", "/api/v1/nothing", e.token, "", ""); code != 404 || !strings.Contains(body, "GET /api/v1/nothing") {
		t.Fatalf("unknown route: %d %s", code, body)
	}
	if code, body := e.raw(t, "PUT", "/api/v1/groups/new-homes", e.token, "", ""); code != 405 || !strings.Contains(body, "use GET") {
		t.Fatalf("wrong method: %d %s", code, body)
	}
	if code, body := e.raw(t, "PATCH", "/api/v1/devices", e.token, "", ""); code != 405 || !strings.Contains(body, "GET or POST") {
		t.Fatalf("wrong method: %d %s", code, body)
	}
}
