package catalog

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestUsers(t *testing.T) {
	c := newTestCatalog(t)
	if err := c.CreateUser(User{Name: "alice", Role: UserOwner}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateUser(User{Name: "alice", Role: UserAdmin}); !errors.Is(err, ErrExists) {
		t.Fatalf("second alice: %v, want ErrExists", err)
	}
	if err := c.UpdateUser("alice", func(u *User) error { u.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateUser("alice", func(u *User) error { u.Name = "eve"; return nil }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("rename: %v, want ErrInvalid", err)
	}
	u, err := c.User("alice")
	if err != nil || !u.Disabled || u.Role != UserOwner {
		t.Fatalf("alice: %+v %v", u, err)
	}
	if _, err := c.User("bob"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("bob: %v, want ErrNotFound", err)
	}
	if err := c.UpdateUser("bob", func(*User) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update bob: %v, want ErrNotFound", err)
	}
}

func TestAssignOwner(t *testing.T) {
	c := newTestCatalog(t)
	ctx := context.Background()
	if err := c.PutDevices(ctx, []Device{{ID: "a1"}, {ID: "a2"}, {ID: "b1", Owner: "bob"}}); err != nil {
		t.Fatal(err)
	}
	for _, g := range []Group{{Name: "ga", Kind: GroupDevices}, {Name: "mixed", Kind: GroupDevices}, {Name: "bk", Kind: GroupBackup}} {
		if err := c.CreateGroup(g.Name, g); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.AddMembers("ga", []string{"a1", "a2"}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddMembers("mixed", []string{"a1", "b1"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		a    Assignment
		err  error
	}{
		{"a device group with its devices", Assignment{Groups: []string{"ga"}}, nil},
		{"a backup group", Assignment{BackupGroups: []string{"bk"}}, nil},
		{"a group holding another owner's device is refused whole", Assignment{Groups: []string{"mixed"}}, ErrOwned},
		{"a backup group named as a device group", Assignment{Groups: []string{"bk"}}, ErrInvalid},
		{"an unknown device", Assignment{Devices: []string{"zz"}}, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.AssignOwner("alice", tt.a)
			if (tt.err == nil) != (err == nil) || (tt.err != nil && !errors.Is(err, tt.err)) {
				t.Fatalf("AssignOwner: %v, want %v", err, tt.err)
			}
		})
	}
	g, ms, err := c.GroupMembers("ga")
	if err != nil || g.Owner != "alice" || len(ms) != 2 {
		t.Fatalf("ga: %+v %v %v", g, ms, err)
	}
	for _, m := range ms {
		if !m.Found || m.Device.Owner != "alice" {
			t.Errorf("member %+v: want alice's", m)
		}
	}
	if g, _, _ := c.GroupMembers("mixed"); g.Owner != "" {
		t.Errorf("the refused group got owner %q", g.Owner)
	}
	owners, err := c.DeviceOwners([]string{"a1", "b1", "zz"})
	if err != nil || owners["a1"] != "alice" || owners["b1"] != "bob" || len(owners) != 2 {
		t.Fatalf("owners %v %v", owners, err)
	}
	if err := c.UnassignOwner("alice", Assignment{Devices: []string{"b1"}}); !errors.Is(err, ErrOwned) {
		t.Fatalf("unassign bob's device from alice: %v, want ErrOwned", err)
	}
	if err := c.UnassignOwner("alice", Assignment{Groups: []string{"ga"}}); err != nil {
		t.Fatal(err)
	}
	if d, _ := c.Device("a2"); d.Owner != "" {
		t.Errorf("a2 still has owner %q", d.Owner)
	}
}

func TestAudit(t *testing.T) {
	c := newTestCatalog(t)
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for i, u := range []string{"alice", "bob", "alice"} {
		if _, err := c.AppendAudit(AuditEntry{Time: t0.Add(time.Duration(i) * time.Hour), User: u, Action: "device.add", Outcome: AuditOK}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		q    AuditQuery
		want []uint64
	}{
		{"all", AuditQuery{}, []uint64{1, 2, 3}},
		{"one user", AuditQuery{User: "alice"}, []uint64{1, 3}},
		{"since", AuditQuery{Since: t0.Add(time.Hour)}, []uint64{2, 3}},
		{"latest", AuditQuery{Limit: 1}, []uint64{3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, err := c.Audit(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, e := range es {
				got = append(got, e.Seq)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("seqs %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("seqs %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func newTestCatalog(t testing.TB) *Catalog {
	t.Helper()
	c, _ := mustCreate(t, Options{})
	return c
}
