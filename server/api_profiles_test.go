package server

import (
	"fmt"
	"github.com/fleetvault/fleetvault/apiclient"
	"strings"
	"testing"

	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/settingsdoc"
)

func TestAPIProfiles(t *testing.T) {
	e := startAPI(t)
	homes := e.fleet(t, 4)
	ctx := e.ctx
	keep := settingsdoc.Profile{Name: "keep-fan", Keep: []string{"/fan/*"}, Set: []settingsdoc.Assign{{Pointer: "/name", Template: "{{.Device.ID}}"}}}

	t.Run("put, get, list", func(t *testing.T) {
		if _, err := e.c.PutProfile(ctx, keep); err != nil {
			t.Fatal(err)
		}
		p, err := e.c.Profile(ctx, "keep-fan")
		if err != nil || fmt.Sprint(p) != fmt.Sprint(keep) {
			t.Fatalf("get: %+v %v", p, err)
		}
		ps, err := e.c.Profiles(ctx)
		if err != nil || len(ps) != 1 {
			t.Fatalf("list: %+v %v", ps, err)
		}
	})
	t.Run("bad profile is a 400 naming the entry", func(t *testing.T) {
		_, err := e.c.PutProfile(ctx, settingsdoc.Profile{Name: "bad", Keep: []string{"fan"}})
		if apiclient.StatusOf(err) != 400 || !strings.Contains(err.Error(), `"fan"`) {
			t.Fatalf("bad: %v", err)
		}
	})
	t.Run("unknown profile is a 404 with a suggestion", func(t *testing.T) {
		_, err := e.c.Profile(ctx, "keep-fna")
		if apiclient.StatusOf(err) != 404 || !strings.Contains(err.Error(), `did you mean "keep-fan"?`) {
			t.Fatalf("typo: %v", err)
		}
		if _, err := e.c.AttachProfile(ctx, "reference-iot", "nope"); apiclient.StatusOf(err) != 404 {
			t.Fatalf("attach unknown: %v", err)
		}
	})

	b, err := e.c.StartJob(ctx, apiclient.NewJob{Kind: "backup", Source: "model-house", Target: "reference-iot"})
	if err != nil {
		t.Fatal(err)
	}
	e.waitJob(t, b.ID)
	if _, err := e.c.AttachProfile(ctx, "reference-iot", "keep-fan"); err != nil {
		t.Fatal(err)
	}
	t.Run("a restore uses the group's profile", func(t *testing.T) {
		r, err := e.c.StartJob(ctx, apiclient.NewJob{Kind: "restore", Source: "reference-iot", Target: "new-homes"})
		if err != nil {
			t.Fatal(err)
		}
		j := e.waitJob(t, r.ID)
		if j.Profile == nil || j.Profile.Name != "keep-fan" || j.Progress.Counts[grouprestore.Restored] != 4 {
			t.Fatalf("job %+v", j)
		}
		for id, d := range homes {
			s, _ := d.Settings(ctx)
			// The homes had no fan: /fan/* keeps none of the backup's members,
			// and the section itself stays, empty (profiles.md, wildcards).
			if fan := fmt.Sprint(s["fan"]); s["name"] != id || fan != "map[]" {
				t.Errorf("%s holds %v: want its own name and an empty fan", id, s)
			}
		}
	})
	t.Run("no_profile and profile exclude each other; profile on a backup refused", func(t *testing.T) {
		_, err := e.c.StartJob(ctx, apiclient.NewJob{Kind: "restore", Source: "reference-iot", Target: "new-homes", Profile: "keep-fan", NoProfile: true})
		if apiclient.StatusOf(err) != 400 {
			t.Fatalf("both: %v", err)
		}
		_, err = e.c.StartJob(ctx, apiclient.NewJob{Kind: "backup", Source: "model-house", Target: "x", Profile: "keep-fan"})
		if apiclient.StatusOf(err) != 400 {
			t.Fatalf("backup with profile: %v", err)
		}
	})
}
