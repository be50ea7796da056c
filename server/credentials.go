package server

import (
	"errors"

	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/catalog"
)

// credentials lets the embedded broker authenticate devices against the
// resource database, and the server's own in-process identity.
type credentials struct {
	c      *catalog.Catalog
	server broker.Identity
}

var _ broker.Credentials = (*credentials)(nil)

// Lookup finds username: the server identity, or a device with a password.
func (cr *credentials) Lookup(username string) (broker.Identity, bool, error) {
	if username == cr.server.Name {
		return cr.server, true, nil
	}
	d, err := cr.c.Device(username)
	if errors.Is(err, catalog.ErrNotFound) {
		return broker.Identity{}, false, nil
	}
	if err != nil {
		return broker.Identity{}, false, err
	}
	if d.PasswordHash == "" {
		return broker.Identity{}, false, nil // provisioned without MQTT credentials
	}
	role := broker.RoleDevice
	if d.Role == "server" {
		role = broker.RoleServer
	}
	return broker.Identity{Name: d.ID, Role: role, PasswordHash: d.PasswordHash}, true, nil
}
