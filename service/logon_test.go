package service

import (
	"context"
	"errors"
	"testing"

	"github.com/fleetvault/fleetvault/catalog"
)

func TestLogOn(t *testing.T) {
	dir := t.TempDir()
	mbr, err := catalog.Init(dir, catalog.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := catalog.Open(mbr, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s := New(Options{Catalog: c})
	admin := s.As(Identity{User: "root", Role: RoleAdmin, Addr: "test"})
	ctx := context.Background()
	for _, u := range []string{"alice", "carol"} {
		if err := admin.AddUser(ctx, u, RoleOwner, u+"-password-1"); err != nil {
			t.Fatal(err)
		}
	}
	if err := admin.DisableUser(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, user, password string
		ok                   bool
	}{
		{"right password", "alice", "alice-password-1", true},
		{"wrong password", "alice", "alice-password-2", false},
		{"unknown user", "mallory", "alice-password-1", false},
		{"disabled user", "carol", "carol-password-1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := s.LogOn(tt.user, tt.password, "192.0.2.7")
			if tt.ok != (err == nil) {
				t.Fatalf("LogOn: %+v %v", id, err)
			}
			if tt.ok && (id.User != tt.user || id.Role != RoleOwner || id.Addr != "192.0.2.7") {
				t.Fatalf("identity %+v", id)
			}
			if !tt.ok && (!errors.Is(err, ErrUnauthenticated) || err.Error() != errBadLogOn.Error()) {
				t.Fatalf("error %v, want the one ErrUnauthenticated sentence for every refusal", err)
			}
			log, err := c.Audit(catalog.AuditQuery{User: tt.user, Limit: 1})
			if err != nil || len(log) != 1 || log[0].Action != "user.logon" {
				t.Fatalf("audit: %+v %v", log, err)
			}
			if want := map[bool]string{true: catalog.AuditOK, false: catalog.AuditUnauthenticated}[tt.ok]; log[0].Outcome != want {
				t.Fatalf("audited %q, want %q", log[0].Outcome, want)
			}
		})
	}
	t.Run("change own password", func(t *testing.T) {
		alice := s.As(Identity{User: "alice", Role: RoleOwner, Addr: "test"})
		if err := alice.ChangeOwnPassword(ctx, "wrong-current-1", "alice-password-9"); !errors.Is(err, ErrInvalid) {
			t.Fatalf("a wrong current password: %v, want ErrInvalid", err)
		}
		if err := alice.ChangeOwnPassword(ctx, "alice-password-1", "alice-password-9"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LogOn("alice", "alice-password-9", "test"); err != nil {
			t.Fatalf("the new password: %v", err)
		}
	})
	t.Run("view as", func(t *testing.T) {
		if _, err := s.As(Identity{User: "alice", Role: RoleOwner}).ViewAs(ctx, "alice"); !errors.Is(err, ErrForbidden) {
			t.Fatalf("an owner viewing as: %v, want ErrForbidden", err)
		}
		v, err := admin.ViewAs(ctx, "alice")
		if err != nil || v.Identity().User != "alice" || v.Identity().Role != RoleOwner {
			t.Fatalf("%v %v", v, err)
		}
	})
}
