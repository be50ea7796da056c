package catalog

import (
	"errors"
	"reflect"
	"testing"

	"github.com/fleetvault/fleetvault/settingsdoc"
)

func TestProfiles(t *testing.T) {
	c, _ := mustCreate(t, Options{})
	keep := settingsdoc.Profile{Name: "keep-identity", Keep: []string{"/name", "/network/*"},
		Set: []settingsdoc.Assign{{Pointer: "/zone", Template: "{{.Tag.zone}}"}}}
	if err := c.PutProfile(keep); err != nil {
		t.Fatal(err)
	}
	t.Run("get", func(t *testing.T) {
		p, err := c.Profile("keep-identity")
		if err != nil || !reflect.DeepEqual(p, keep) {
			t.Fatalf("Profile = %+v, %v", p, err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if _, err := c.Profile("nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
	t.Run("invalid refused", func(t *testing.T) {
		err := c.PutProfile(settingsdoc.Profile{Name: "bad", Keep: []string{"name"}})
		if !errors.Is(err, ErrInvalid) || !errors.Is(err, settingsdoc.ErrProfile) {
			t.Fatalf("err = %v, want ErrInvalid and ErrProfile", err)
		}
		if _, err := c.Profile("bad"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a refused profile was stored: %v", err)
		}
	})
	t.Run("list", func(t *testing.T) {
		ps, err := c.Profiles()
		if err != nil || len(ps) != 1 || ps[0].Name != "keep-identity" {
			t.Fatalf("Profiles = %+v, %v", ps, err)
		}
	})
	t.Run("attach", func(t *testing.T) {
		if p, err := c.GroupProfile("models"); err != nil || p.Name != "" {
			t.Fatalf("before attach: %+v, %v", p, err)
		}
		if err := c.AttachProfile("models", "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("attach unknown: %v", err)
		}
		if err := c.AttachProfile("models", "keep-identity"); err != nil {
			t.Fatal(err)
		}
		if p, err := c.GroupProfile("models"); err != nil || !reflect.DeepEqual(p, keep) {
			t.Fatalf("after attach: %+v, %v", p, err)
		}
		if err := c.AttachProfile("models", ""); err != nil {
			t.Fatal(err)
		}
		if p, err := c.GroupProfile("models"); err != nil || p.Name != "" {
			t.Fatalf("after detach: %+v, %v", p, err)
		}
	})
}
