package service

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/catalog"
)

// LogOn checks a person's name and password (the web view's log-on) and
// returns the identity they act as. A wrong name, a wrong password and a
// disabled user are all ErrUnauthenticated with the same sentence, and take
// the same time (an unknown name is checked against a dummy hash), so the
// answer tells nothing about which users exist. Every attempt is audited
// ("user.logon"). Throttling failed attempts per address is the caller's
// (httpguard.Throttle).
func (s *Service) LogOn(name, password, addr string) (Identity, error) {
	id, err := s.logOn(name, password, addr)
	e := catalog.AuditEntry{User: name, Role: id.Role, Addr: addr, Action: "user.logon", Objects: []string{"user:" + name}, Outcome: outcome(err)}
	if err != nil {
		e.Detail = err.Error()
	}
	if _, aerr := s.cat.AppendAudit(e); aerr != nil {
		s.log.Error("audit: append failed", "action", e.Action, "user", name, "err", aerr)
		if err == nil {
			return Identity{}, fmt.Errorf("log-on of %s could not be written to the audit log: %w", name, aerr)
		}
	}
	return id, err
}

var errBadLogOn = errorf(ErrUnauthenticated, "wrong user name or password, or the user is disabled")

func (s *Service) logOn(name, password, addr string) (Identity, error) {
	u, err := s.cat.User(name)
	switch {
	case errors.Is(err, catalog.ErrNotFound) || (err == nil && u.PasswordHash == ""):
		_, _ = broker.VerifyPassword(s.dummyHash(), password) // the same time as a real check
		return Identity{}, errBadLogOn
	case err != nil:
		return Identity{}, fmt.Errorf("look up user %s: %w", name, err)
	}
	ok, err := broker.VerifyPassword(u.PasswordHash, password)
	if err != nil {
		return Identity{}, fmt.Errorf("user %s has a damaged password hash (%w); an admin can set a new one with fleetvault user passwd", name, err)
	}
	if !ok || u.Disabled {
		return Identity{}, errBadLogOn
	}
	return Identity{User: u.Name, Role: u.Role, Addr: addr}, nil
}

// newDummyHash returns a hash with a person's password costs, made once on
// first use, that no password is checked against for real.
func newDummyHash() func() string {
	return sync.OnceValue(func() string {
		h, err := broker.HashPasswordParams("not a password of anyone", userParams())
		if err != nil {
			return ""
		}
		return h
	})
}

// Identify returns the identity of user name as it stands now, for a web
// session that logged on earlier: a user since disabled or deleted is
// ErrUnauthenticated, and a changed role takes effect at once.
func (s *Service) Identify(name, addr string) (Identity, error) {
	u, err := s.cat.User(name)
	if errors.Is(err, catalog.ErrNotFound) || (err == nil && u.Disabled) {
		return Identity{}, errorf(ErrUnauthenticated, "user %q is disabled or gone; log on again", name)
	}
	if err != nil {
		return Identity{}, fmt.Errorf("look up user %s: %w", name, err)
	}
	return Identity{User: u.Name, Role: u.Role, Addr: addr}, nil
}

// ChangeOwnPassword replaces the caller's own password after checking the
// current one. Any user may; an admin sets others' with SetPassword.
func (ss *Session) ChangeOwnPassword(_ context.Context, current, next string) error {
	return ss.audited("user.passwd", []string{ss.id.User}, func() error {
		if _, err := ss.s.logOn(ss.id.User, current, ss.id.Addr); err != nil {
			if errors.Is(err, ErrUnauthenticated) {
				return &FieldError{Field: "current", Problem: "is not your current password"}
			}
			return err
		}
		hash, err := hashPassword(next)
		if err != nil {
			return err
		}
		err = ss.s.cat.UpdateUser(ss.id.User, func(u *catalog.User) error {
			u.PasswordHash = hash
			return nil
		})
		if errors.Is(err, catalog.ErrNotFound) {
			return errorf(ErrNotFound, "no user %q", ss.id.User)
		}
		return err
	})
}

// ViewAs returns the service as the data owner called owner sees it, for an
// admin's support; only an admin may, and it is audited ("owner.view-as").
// The web view keeps such a session read-only.
func (ss *Session) ViewAs(_ context.Context, owner string) (*Session, error) {
	var out *Session
	err := ss.audited("owner.view-as", []string{"user:" + owner}, func() error {
		var err error
		out, err = ss.Viewing(owner)
		return err
	})
	return out, err
}

// Viewing is ViewAs without the audit entry, for each later request of a
// view that ViewAs started: the same rules, checked again (the caller may
// have stopped being an admin, the owner may be gone).
func (ss *Session) Viewing(owner string) (*Session, error) {
	if err := ss.id.requireAdmin("view as a data owner"); err != nil {
		return nil, err
	}
	if err := ss.checkOwner(owner); err != nil {
		return nil, err
	}
	return ss.s.As(Identity{User: owner, Role: RoleOwner, Addr: ss.id.Addr + " (admin " + ss.id.User + " viewing)"}), nil
}
