package bui

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/service"
)

// overviewWorld is a service over devices devices, all alice's, every one
// backed up once, in a backup group with a schedule whose RPO half of them
// miss; and a UI with a session of alice's.
func overviewWorld(tb testing.TB, devices int) (*UI, *session) {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	mbr, err := catalog.Init(dir, catalog.InitOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	c, err := catalog.Open(mbr, catalog.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	now := time.Now().UTC()
	devs := make([]catalog.Device, devices)
	pieces := make([]catalog.NewPiece, devices)
	for i := range devs {
		id := fmt.Sprintf("home%05d-climate", i)
		devs[i] = catalog.Device{ID: id, Owner: "alice", Category: "non-critical"}
		age := time.Hour
		if i%2 == 1 {
			age = 30 * time.Hour
		}
		pieces[i] = catalog.NewPiece{Client: id, Name: "settings", Type: catalog.TypeSettings, Group: "homes-nightly", Time: now.Add(-age),
			Content: []byte(fmt.Sprintf(`{"setpoint_c": %d}`, 18+i%6))}
	}
	if err := c.PutDevices(ctx, devs); err != nil {
		tb.Fatal(err)
	}
	if _, err := c.Ingest(ctx, pieces); err != nil {
		tb.Fatal(err)
	}
	svc := service.New(service.Options{Catalog: c})
	admin := svc.As(service.Identity{User: "root", Role: service.RoleAdmin, Addr: "bench"})
	if err := c.CreateUser(catalog.User{Name: "alice", Role: service.RoleOwner}); err != nil {
		tb.Fatal(err)
	}
	if _, err := admin.CreateGroup(ctx, apiclient.NewGroup{Name: "homes", Kind: catalog.GroupDevices, Owner: "alice"}); err != nil {
		tb.Fatal(err)
	}
	ids := make([]string, devices)
	for i, d := range devs {
		ids[i] = d.ID
	}
	if _, err := admin.AddMembers(ctx, "homes", ids); err != nil {
		tb.Fatal(err)
	}
	if _, err := admin.CreateGroup(ctx, apiclient.NewGroup{Name: "homes-nightly", Kind: catalog.GroupBackup, Owner: "alice"}); err != nil {
		tb.Fatal(err)
	}
	if _, err := admin.AddSchedule(ctx, apiclient.NewSchedule{Name: "nightly", DeviceGroup: "homes", BackupGroup: "homes-nightly", Cron: "0 3 * * *", RPO: "26h"}); err != nil {
		tb.Fatal(err)
	}
	u, err := New(Options{Service: svc})
	if err != nil {
		tb.Fatal(err)
	}
	s, err := u.sessions.create("alice")
	if err != nil {
		tb.Fatal(err)
	}
	return u, s
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// get answers a GET of path in session s.
func get(u *UI, h http.Handler, s *session, path string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.AddCookie(&http.Cookie{Name: cookieName, Value: s.id})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// BenchmarkOverview: the "Am I protected?" page of an owner of 10,000
// devices, rendered server-side (sorted worst first, counted, one page of
// PageSize rows). The figure is in docs/BENCHMARKS.md.
func BenchmarkOverview(b *testing.B) {
	u, s := overviewWorld(b, 10000)
	h := u.Handler()
	for _, path := range []string{"/", "/?sort=backup&dir=desc&page=50", "/?status=not-protected&q=home0"} {
		b.Run(path, func(b *testing.B) {
			cpu0 := cpuTime()
			for b.Loop() {
				if w := get(u, h, s, path); w.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", path, w.Code, w.Body.String())
				}
			}
			// CPU time (user + system) per page: what a loaded machine's
			// wall time hides.
			b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
}

func postForm(path string, form url.Values) *http.Request {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

func recorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }
