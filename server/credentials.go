package server

import (
	"errors"

	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/catalog"
)

// credentials lets the embedded broker authenticate identities in the
// resource database: devices, and servers (role "server") that connect over
// the network, e.g. a second Fleetvault process.
type credentials struct {
	c *catalog.Catalog
}

var _ broker.Credentials = (*credentials)(nil)

// Lookup finds the identity named username that has a password.
func (cr *credentials) Lookup(username string) (broker.Identity, bool, error) {
	d, err := cr.c.Device(username)
	if errors.Is(err, catalog.ErrNotFound) {
		return broker.Identity{}, false, nil
	}
	if err != nil {
		return broker.Identity{}, false, err
	}
	id, ok := identityOf(d)
	return id, ok, nil
}

// identityOf is the broker identity of a resource database entry: false for
// one provisioned without MQTT credentials.
func identityOf(d catalog.Device) (broker.Identity, bool) {
	if d.PasswordHash == "" {
		return broker.Identity{}, false
	}
	role := broker.RoleDevice
	if d.Role == "server" {
		role = broker.RoleServer
	}
	return broker.Identity{Name: d.ID, Role: role, PasswordHash: d.PasswordHash}, true
}
