package service

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
)

// benchService is a service over 10,000 devices, every other one alice's,
// with a token for alice.
func benchService(b *testing.B) (*Service, *Tokens, string) {
	b.Helper()
	dir := b.TempDir()
	mbr, err := catalog.Init(dir, catalog.InitOptions{})
	if err != nil {
		b.Fatal(err)
	}
	c, err := catalog.Open(mbr, catalog.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	devs := make([]catalog.Device, 10000)
	for i := range devs {
		devs[i] = catalog.Device{ID: fmt.Sprintf("home%05d", i)}
		if i%2 == 0 {
			devs[i].Owner = "alice"
		}
	}
	if err := c.PutDevices(context.Background(), devs); err != nil {
		b.Fatal(err)
	}
	if err := c.CreateUser(catalog.User{Name: "alice", Role: RoleOwner}); err != nil {
		b.Fatal(err)
	}
	tokens := OpenTokens(filepath.Join(dir, TokenFileName))
	tok, err := tokens.CreateFor("alice-laptop", "alice")
	if err != nil {
		b.Fatal(err)
	}
	return New(Options{Catalog: c}), tokens, tok
}

// BenchmarkListDevices: GET /api/v1/devices over 10,000 devices, as an
// admin (all) and as an owner (half).
func BenchmarkListDevices(b *testing.B) {
	svc, _, _ := benchService(b)
	for _, id := range []Identity{{User: "admin", Role: RoleAdmin}, {User: "alice", Role: RoleOwner}} {
		b.Run(id.Role, func(b *testing.B) {
			ss := svc.As(id)
			for b.Loop() {
				if _, err := ss.ListDevices(context.Background(), DeviceQuery{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAuthenticate: a user's token to an identity (token hash, the
// user's record).
func BenchmarkAuthenticate(b *testing.B) {
	svc, tokens, tok := benchService(b)
	for b.Loop() {
		if _, err := svc.Authenticate(tokens, tok, "127.0.0.1:1"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBackupsOwner: an owner's backup listing, which scans the devices
// and groups to find theirs.
func BenchmarkBackupsOwner(b *testing.B) {
	svc, _, _ := benchService(b)
	ss := svc.As(Identity{User: "alice", Role: RoleOwner})
	for b.Loop() {
		if _, err := ss.Backups(context.Background(), apiclient.BackupQuery{}); err != nil {
			b.Fatal(err)
		}
	}
}
