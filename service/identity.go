package service

import (
	"fmt"

	"github.com/fleetvault/fleetvault/catalog"
)

// Roles, as the resource database stores them (catalog.User.Role).
const (
	RoleAdmin    = catalog.UserAdmin
	RoleOperator = catalog.UserOperator
	RoleOwner    = catalog.UserOwner
)

// Identity is who is calling: every operation of the service takes one.
type Identity struct {
	User string // the user's name; the token's name for the installation's own admin tokens
	Role string // RoleAdmin, RoleOperator or RoleOwner
	Addr string // where the call came from: a client address, or "cli"
}

// CheckRole returns an error for a role that is not one of the three.
func CheckRole(role string) error {
	switch role {
	case RoleAdmin, RoleOperator, RoleOwner:
		return nil
	}
	return &FieldError{Field: "role", Problem: fmt.Sprintf("must be %s, %s or %s, not %q", RoleAdmin, RoleOperator, RoleOwner, role)}
}

// The rules of who may do what. Every operation of the service asks these,
// and nothing else does:
//
//   - admin: everything, user management and the audit log included;
//   - operator: devices, groups, backups, jobs and the catalog export on
//     everything; no user management, no audit log;
//   - owner: sees and acts only on what is assigned to them (see owns*); may
//     back up and restore their own groups and control their own jobs; may not
//     add, delete or regroup devices, nor export the whole catalog.
//
// "Not yours" is ErrNotFound, worded as for an object that does not exist;
// "not for your role" is ErrForbidden.

func (id Identity) owner() bool { return id.Role == RoleOwner }

// mayManage reports whether id may change the resource database (devices,
// groups, members).
func (id Identity) mayManage() bool { return id.Role == RoleAdmin || id.Role == RoleOperator }

// forbid is the error for an operation id's role may not do.
func (id Identity) forbid(what string) error {
	return errorf(ErrForbidden, "user %q (role %s) may not %s", id.User, id.Role, what)
}

// requireManage refuses an owner (or an unknown role) a change to the
// resource database.
func (id Identity) requireManage(what string) error {
	if !id.mayManage() {
		return id.forbid(what + "; ask an operator or an admin")
	}
	return nil
}

// requireAdmin refuses everyone but an admin.
func (id Identity) requireAdmin(what string) error {
	if id.Role != RoleAdmin {
		return id.forbid(what + "; only an admin may")
	}
	return nil
}

// ownsDevice: an owner owns the devices assigned to them (catalog.Device.Owner).
func (id Identity) ownsDevice(d catalog.Device) bool { return !id.owner() || d.Owner == id.User }

// ownsGroup: an owner owns the device and backup groups assigned to them.
func (id Identity) ownsGroup(g catalog.Group) bool { return !id.owner() || g.Owner == id.User }

// seesPiece: an owner sees the backups that carry them as piece_owner, those
// of their devices, and those in their backup groups.
func (id Identity) seesPiece(p catalog.Piece, devices, groups map[string]bool) bool {
	return !id.owner() || p.Owner == id.User || devices[p.Client] || (p.Group != "" && groups[p.Group])
}

// requireSelfOrAdmin lets a user act on what is theirs as a person (their
// notification preferences) and an admin on anyone's.
func (id Identity) requireSelfOrAdmin(user, what string) error {
	if id.Role != RoleAdmin && id.User != user {
		return id.forbid(what + " of another user; only an admin may")
	}
	return nil
}
