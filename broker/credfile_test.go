package broker_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fleetvault/fleetvault/broker"
)

func TestCredentialsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s1.credentials.yaml")
	h, err := broker.HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	ids := []broker.Identity{{Name: "d2", Role: broker.RoleDevice, PasswordHash: h}, {Name: "srv", Role: broker.RoleServer, PasswordHash: h}}
	if changed, err := broker.WriteCredentialsFile(path, ids); err != nil || !changed {
		t.Fatalf("first write: %v, %v", changed, err)
	}
	f, err := broker.OpenCredentialsFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		found bool
		role  broker.Role
	}{{"d2", true, broker.RoleDevice}, {"srv", true, broker.RoleServer}, {"d9", false, 0}} {
		t.Run("lookup "+tc.name, func(t *testing.T) {
			id, found, err := f.Lookup(tc.name)
			if err != nil || found != tc.found || found && (id.Role != tc.role || id.PasswordHash != h) {
				t.Fatalf("Lookup(%s) = %+v, %v, %v", tc.name, id, found, err)
			}
		})
	}
	t.Run("unchanged", func(t *testing.T) {
		if changed, err := broker.WriteCredentialsFile(path, []broker.Identity{ids[1], ids[0]}); err != nil || changed {
			t.Fatalf("the same identities in another order: changed %v, %v", changed, err)
		}
		if _, loaded, err := f.Refresh(); err != nil || loaded {
			t.Fatalf("Refresh of an unchanged file: loaded %v, %v", loaded, err)
		}
	})
	t.Run("changed", func(t *testing.T) {
		if _, err := broker.WriteCredentialsFile(path, ids[:1]); err != nil {
			t.Fatal(err)
		}
		if n, loaded, err := f.Refresh(); err != nil || !loaded || n != 1 {
			t.Fatalf("Refresh = %d, %v, %v; want 1 identity loaded", n, loaded, err)
		}
		if _, found, _ := f.Lookup("srv"); found {
			t.Fatal("an identity removed from the file still connects")
		}
	})
	t.Run("corrupt keeps the last good", func(t *testing.T) {
		if err := os.WriteFile(path, []byte("- {name: x, role: king}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Reload(); err == nil {
			t.Fatal("Reload of a corrupt file: no error")
		}
		if _, found, _ := f.Lookup("d2"); !found {
			t.Fatal("the identities were lost with the corrupt file")
		}
	})
	t.Run("bad name refused", func(t *testing.T) {
		if _, err := broker.WriteCredentialsFile(path, []broker.Identity{{Name: "a/b", PasswordHash: h}}); err == nil {
			t.Fatal("a name with '/' was written")
		}
	})
}
