package catalog

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/fleetvault/fleetvault/identifiers"
)

func TestDevices(t *testing.T) {
	c, _ := mustCreate(t, Options{})
	ctx := context.Background()
	ds := []Device{
		{ID: "home1-climate", Domain: "North Africa", Category: "critical", Owner: "facilities", Identifier: "mqtt://home1-climate", PasswordHash: "$2a$10$x", Role: RoleDevice, Optional: map[string]string{"room": "hall"}},
		{ID: "server", Role: RoleServer, PasswordHash: "$2a$10$y"},
	}
	if err := c.PutDevices(ctx, ds); err != nil {
		t.Fatal(err)
	}
	t.Run("get", func(t *testing.T) {
		d, err := c.Device("home1-climate")
		if err != nil || !reflect.DeepEqual(d, ds[0]) {
			t.Fatalf("Device = %+v, %v; want %+v", d, err, ds[0])
		}
	})
	t.Run("missing", func(t *testing.T) {
		if _, err := c.Device("nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
	t.Run("list", func(t *testing.T) {
		var ids []string
		if err := c.Devices(func(d Device) error { ids = append(ids, d.ID); return nil }); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ids, []string{"home1-climate", "server"}) {
			t.Fatalf("ids = %v", ids)
		}
	})
	t.Run("unknown catalog", func(t *testing.T) {
		if err := c.PutDevices(ctx, []Device{{ID: "x", Catalog: "mars"}}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("err = %v, want ErrInvalid", err)
		}
	})
	t.Run("empty id", func(t *testing.T) {
		if err := c.PutDevices(ctx, []Device{{}}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("err = %v, want ErrInvalid", err)
		}
	})
}

func TestGroups(t *testing.T) {
	c, _ := mustCreate(t, Options{})
	g := Group{Kind: GroupDevices, Domain: "Asia", Category: "non-critical", Owner: "builder", Schedule: "0 3 * * *"}
	if err := c.CreateGroup("Backup Group of Devices", g); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateGroup("Backup Group of Devices", g); !errors.Is(err, ErrExists) {
		t.Fatalf("second CreateGroup: %v, want ErrExists", err)
	}
	var ids []string
	for i := 0; i < 1000; i++ {
		ids = append(ids, fmt.Sprintf("home%04d", i))
	}
	if err := c.AddMembers("Backup Group of Devices", ids); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveMembers("Backup Group of Devices", ids[10:]); err != nil {
		t.Fatal(err)
	}
	got, err := c.Members("Backup Group of Devices")
	if err != nil || !reflect.DeepEqual(got, ids[:10]) {
		t.Fatalf("Members = %v, %v", got, err)
	}
	if err := c.AddMembers("nope", ids); !errors.Is(err, ErrNotFound) {
		t.Fatalf("AddMembers to missing group: %v", err)
	}
	gs, err := c.Groups()
	g.Name = "Backup Group of Devices"
	if err != nil || len(gs) != 1 || !reflect.DeepEqual(gs[0], g) {
		t.Fatalf("Groups = %+v, %v", gs, err)
	}
}

func TestReplicationDR(t *testing.T) {
	c, mbr := mustCreate(t, Options{})
	rules := []identifiers.Rule{
		{Local: identifiers.Endpoint{Host: "10.10.11.44", Port: 6543}, Remote: identifiers.Endpoint{Host: "10.50.4.4", Port: 3456}},
		{Local: identifiers.Endpoint{Host: "10.10.11.45"}, Remote: identifiers.Endpoint{Host: "10.50.4.4"}},
	}
	if err := c.SetReplication(rules); err != nil {
		t.Fatal(err)
	}
	c.Close()
	id := identifiers.ID{Address: "10.10.11.44", Port: 6543, Method: "WRITE", Params: []string{"IP:10.10.11.45", "dedupe"}, Location: "/mtree/backup/c1"}
	tests := []struct {
		name, site string
		wantAddr   string
		wantPort   int
	}{
		{"local site keeps identifiers", "10.10.11.1", "10.10.11.44", 6543},
		{"dr site rewrites them", "10.50.4.1", "10.50.4.4", 3456},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Open(mbr, Options{SiteAddress: tt.site})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			got, err := c.Replication()
			if err != nil || !reflect.DeepEqual(got, rules) {
				t.Fatalf("Replication = %+v, %v", got, err)
			}
			out, err := c.RewriteForSite(id)
			if err != nil {
				t.Fatal(err)
			}
			if out.Address != tt.wantAddr || out.Port != tt.wantPort {
				t.Errorf("RewriteForSite = %s:%d, want %s:%d", out.Address, out.Port, tt.wantAddr, tt.wantPort)
			}
		})
	}
}
