package server

import (
	"fmt"
	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/service"
	"strings"
	"testing"
	"time"

	"github.com/fleetvault/fleetvault/grouprestore"
)

func TestParseAsOf(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     time.Time
		err      bool
	}{
		{name: "empty", in: ""},
		{name: "RFC 3339", in: "2026-11-24T10:00:00Z", want: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)},
		{name: "date is its end", in: "2026-11-24", want: time.Date(2026, 11, 24, 23, 59, 59, 999e6, time.UTC)},
		{name: "garbage", in: "yesterday", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := service.ParseAsOf(tc.in)
			if (err != nil) != tc.err || !got.Equal(tc.want) {
				t.Fatalf("ParseAsOf(%q) = %v, %v", tc.in, got, err)
			}
		})
	}
}

func TestAPIReplacementRestore(t *testing.T) {
	e := startAPI(t)
	homes := e.fleet(t, 2) // home0 North, home1 South
	ctx := e.ctx
	b, err := e.c.StartJob(ctx, apiclient.NewJob{Kind: "backup", Source: "model-house", Target: "reference-iot"})
	if err != nil {
		t.Fatal(err)
	}
	e.waitJob(t, b.ID)

	t.Run("from_device: the old device's newest backup", func(t *testing.T) {
		r, err := e.c.StartJob(ctx, apiclient.NewJob{Kind: "restore", Device: "home0-climate", FromDevice: "ref-north"})
		if err != nil {
			t.Fatal(err)
		}
		j := e.waitJob(t, r.ID)
		if j.Device != "home0-climate" || j.Piece == "" || j.Source != "reference-iot" || j.Progress.Counts[grouprestore.Restored] != 1 {
			t.Fatalf("job %+v", j)
		}
		if s, _ := homes["home0-climate"].Settings(ctx); fmt.Sprint(s["setpoint"]) != "21.5" {
			t.Fatalf("home0 holds %v", s)
		}
	})
	t.Run("tag mismatch refused", func(t *testing.T) {
		r, err := e.c.StartJob(ctx, apiclient.NewJob{Kind: "restore", Device: "home1-climate", FromDevice: "ref-north"})
		if err != nil {
			t.Fatal(err)
		}
		j := e.waitJob(t, r.ID)
		if j.Progress.Counts[grouprestore.NoMatch] != 1 {
			t.Fatalf("job %+v", j)
		}
		if s, _ := homes["home1-climate"].Settings(ctx); fmt.Sprint(s["setpoint"]) != "20" {
			t.Fatalf("home1 was written: %v", s)
		}
	})
	for _, tc := range []struct {
		name   string
		nj     apiclient.NewJob
		status int
		says   string
	}{
		{"piece and from_device", apiclient.NewJob{Kind: "restore", Device: "home1-climate", FromDevice: "ref-north", Piece: "x"}, 400, "exactly one"},
		{"no device", apiclient.NewJob{Kind: "restore", FromDevice: "ref-north"}, 400, `"device" is required`},
		{"unknown device", apiclient.NewJob{Kind: "restore", Device: "home9-climate", FromDevice: "ref-north"}, 404, "home9-climate"},
		{"old device without backups", apiclient.NewJob{Kind: "restore", Device: "home1-climate", FromDevice: "home0-climate"}, 404, "has no backup"},
		{"as of before any backup", apiclient.NewJob{Kind: "restore", Device: "home1-climate", FromDevice: "ref-north", AsOf: "2001-01-01"}, 404, "at or before 2001-01-01"},
		{"bad as_of", apiclient.NewJob{Kind: "restore", Source: "reference-iot", Target: "new-homes", AsOf: "soon"}, 400, `"as_of"`},
		{"group restore as of before any backup", apiclient.NewJob{Kind: "restore", Source: "reference-iot", Target: "new-homes", AsOf: "2001-01-01"}, 404, "no backups at or before"},
		{"mismatch flag on a group restore", apiclient.NewJob{Kind: "restore", Source: "reference-iot", Target: "new-homes", AllowTagMismatch: true}, 400, "one device"},
		{"device on a backup", apiclient.NewJob{Kind: "backup", Source: "model-house", Target: "x", Device: "home0-climate"}, 400, "restores only"},
		{"continuous to one device", apiclient.NewJob{Kind: "restore", Device: "home1-climate", FromDevice: "ref-north", Continuous: true}, 400, "device group"},
		{"rescan without continuous", apiclient.NewJob{Kind: "restore", Source: "reference-iot", Target: "new-homes", Rescan: "1s"}, 400, "continuous"},
		{"bad rescan", apiclient.NewJob{Kind: "restore", Source: "reference-iot", Target: "new-homes", Continuous: true, Rescan: "1ms"}, 400, "at least 100ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.c.StartJob(ctx, tc.nj)
			if apiclient.StatusOf(err) != tc.status || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("got %v, want %d saying %q", err, tc.status, tc.says)
			}
		})
	}
	t.Run("continuous: running, listed with its counts, stopped by cancel", func(t *testing.T) {
		r, err := e.c.StartJob(ctx, apiclient.NewJob{Kind: "restore", Source: "reference-iot", Target: "new-homes", Continuous: true, Rescan: "100ms"})
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			js, err := e.c.Jobs(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if js[0].ID == r.ID && js[0].State == grouprestore.JobRunning && js[0].Progress != nil && js[0].Progress.Counts[grouprestore.Restored] == 2 && js[0].Continuous {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("jobs list: %+v", js[0])
			}
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := e.c.CancelJob(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if j := e.waitJob(t, r.ID); j.State != grouprestore.JobCancelled {
			t.Fatalf("after cancel: %+v", j)
		}
	})
}
