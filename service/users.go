package service

import (
	"context"
	"errors"
	"fmt"
	"github.com/fleetvault/fleetvault/apiclient"
	"strings"
	"time"

	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/catalog"
)

// MinPasswordLen is the shortest password a user may have.
const MinPasswordLen = 10

// userParams are the argon2id costs of a person's password. A person
// chooses it, so it may be guessable: unlike a device's machine-made secret
// (broker.DeviceParams) it gets OWASP's recommended cost (19 MiB, 2 passes).
func userParams() broker.Params {
	return broker.Params{Memory: 19 << 10, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// Authenticate maps an API token to the identity it acts as: the user it
// was made for, with that user's role, or for an installation admin token
// (fleetvault init's) an admin named after the token. A wrong or revoked
// token, or one of a disabled or deleted user, is ErrUnauthenticated.
func (s *Service) Authenticate(tokens *Tokens, token, addr string) (Identity, error) {
	if tokens == nil {
		return Identity{}, errorf(ErrUnauthenticated, "this server has no API token file; create a token with fleetvault token create")
	}
	ti, err := tokens.Verify(strings.TrimSpace(token))
	if errors.Is(err, ErrBadToken) {
		return Identity{}, errorf(ErrUnauthenticated, "invalid or revoked API token: create one with fleetvault token create --name NAME")
	}
	if err != nil {
		return Identity{}, fmt.Errorf("check the API token: %w", err)
	}
	if ti.User == "" {
		return Identity{User: ti.Name, Role: RoleAdmin, Addr: addr}, nil
	}
	u, err := s.cat.User(ti.User)
	if errors.Is(err, catalog.ErrNotFound) || (err == nil && u.Disabled) {
		return Identity{}, errorf(ErrUnauthenticated, "API token %q acts as user %q, who is disabled or gone", ti.Name, ti.User)
	}
	if err != nil {
		return Identity{}, fmt.Errorf("look up user %s: %w", ti.User, err)
	}
	return Identity{User: u.Name, Role: u.Role, Addr: addr}, nil
}

// AddUser adds a user with a role and a password. Only an admin may.
func (ss *Session) AddUser(_ context.Context, name, role, password string) error {
	return ss.audited("user.add", []string{name}, func() error {
		if err := ss.id.requireAdmin("add users"); err != nil {
			return err
		}
		if err := CheckName("user", name); err != nil {
			return &FieldError{Field: "name", Problem: err.Error()}
		}
		if err := CheckRole(role); err != nil {
			return err
		}
		hash, err := hashPassword(password)
		if err != nil {
			return err
		}
		err = ss.s.cat.CreateUser(catalog.User{Name: name, Role: role, PasswordHash: hash, Created: time.Now().UTC().Truncate(time.Second)})
		if errors.Is(err, catalog.ErrExists) {
			return errorf(ErrConflict, "user %q already exists; choose another name", name)
		}
		return err
	})
}

func hashPassword(pw string) (string, error) {
	if len([]rune(pw)) < MinPasswordLen {
		return "", &FieldError{Field: "password", Problem: fmt.Sprintf("must be at least %d characters", MinPasswordLen)}
	}
	return broker.HashPasswordParams(pw, userParams())
}

// Users lists the users, without their password hashes. Only an admin may.
func (ss *Session) Users(context.Context) ([]apiclient.User, error) {
	if err := ss.id.requireAdmin("list users"); err != nil {
		return nil, err
	}
	us, err := ss.s.cat.Users()
	if err != nil {
		return nil, err
	}
	out := make([]apiclient.User, len(us))
	for i, u := range us {
		out[i] = apiclient.User{Name: u.Name, Role: u.Role, Disabled: u.Disabled, Created: u.Created}
	}
	return out, nil
}

// SetPassword replaces a user's password. Only an admin may.
func (ss *Session) SetPassword(_ context.Context, name, password string) error {
	return ss.updateUser("user.passwd", name, func(u *catalog.User) error {
		hash, err := hashPassword(password)
		u.PasswordHash = hash
		return err
	})
}

// DisableUser stops a user, and every token acting as them, from doing
// anything; their assignments stay. Only an admin may.
func (ss *Session) DisableUser(_ context.Context, name string) error {
	return ss.updateUser("user.disable", name, func(u *catalog.User) error {
		u.Disabled = true
		return nil
	})
}

func (ss *Session) updateUser(action, name string, fn func(*catalog.User) error) error {
	return ss.audited(action, []string{name}, func() error {
		if err := ss.id.requireAdmin("manage users"); err != nil {
			return err
		}
		err := ss.s.cat.UpdateUser(name, fn)
		if errors.Is(err, catalog.ErrNotFound) {
			return errorf(ErrNotFound, "no user %q%s", name, ss.suggestUser(name))
		}
		return err
	})
}

func (ss *Session) suggestUser(name string) string {
	us, _ := ss.s.cat.Users()
	names := make([]string, len(us))
	for i, u := range us {
		names[i] = u.Name
	}
	return suggestOr(name, names, "; list them with fleetvault user list")
}

// AssignOwner makes user, a user with role owner, the data owner of the
// devices, device groups (with their devices) and backup groups in a, all or
// none. Only an admin may.
func (ss *Session) AssignOwner(_ context.Context, user string, a catalog.Assignment) error {
	return ss.audited("owner.assign", assignmentObjects(user, a), func() error {
		if err := ss.id.requireAdmin("assign data owners"); err != nil {
			return err
		}
		if err := ss.checkOwner(user); err != nil {
			return err
		}
		return ownerError(ss.s.cat.AssignOwner(user, a))
	})
}

// UnassignOwner takes the resources in a from user. Only an admin may.
func (ss *Session) UnassignOwner(_ context.Context, user string, a catalog.Assignment) error {
	return ss.audited("owner.unassign", assignmentObjects(user, a), func() error {
		if err := ss.id.requireAdmin("unassign data owners"); err != nil {
			return err
		}
		return ownerError(ss.s.cat.UnassignOwner(user, a))
	})
}

func ownerError(err error) error {
	switch {
	case errors.Is(err, catalog.ErrNotFound):
		return &Error{Kind: ErrNotFound, Msg: err.Error()}
	case errors.Is(err, catalog.ErrOwned):
		return &Error{Kind: ErrConflict, Msg: err.Error()}
	case errors.Is(err, catalog.ErrInvalid):
		return &Error{Kind: ErrInvalid, Msg: err.Error()}
	}
	return err
}

func assignmentObjects(user string, a catalog.Assignment) []string {
	out := []string{"user:" + user}
	for _, d := range a.Devices {
		out = append(out, "device:"+d)
	}
	for _, g := range a.Groups {
		out = append(out, "group:"+g)
	}
	for _, g := range a.BackupGroups {
		out = append(out, "backup-group:"+g)
	}
	return out
}

// CreateToken makes an API token called name that acts as user (an
// enabled user of any role) and returns it, shown this once. Only an admin
// may.
func (ss *Session) CreateToken(_ context.Context, name, user string) (string, error) {
	var token string
	err := ss.audited("token.create", []string{name, "user:" + user}, func() error {
		if err := ss.id.requireAdmin("create API tokens"); err != nil {
			return err
		}
		if ss.s.tokens == nil {
			return errorf(ErrUnprocessable, "this server has no API token file")
		}
		u, err := ss.s.cat.User(user)
		if errors.Is(err, catalog.ErrNotFound) {
			return errorf(ErrNotFound, "no user %q%s", user, ss.suggestUser(user))
		}
		if err != nil {
			return err
		}
		if u.Disabled {
			return errorf(ErrConflict, "user %q is disabled", user)
		}
		token, err = ss.s.tokens.CreateFor(name, user)
		switch {
		case errors.Is(err, ErrTokenExists):
			return &Error{Kind: ErrConflict, Msg: err.Error()}
		case errors.Is(err, ErrBadTokenName):
			return &Error{Kind: ErrInvalid, Msg: err.Error()}
		}
		return err
	})
	return token, err
}
