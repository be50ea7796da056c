package catalog

import (
	"fmt"
	"sort"
	"time"

	"go.etcd.io/bbolt"
)

// bktUsers holds the people of an installation: name -> User as JSON (a
// record frame, sealed in an encrypted installation).
var bktUsers = []byte("users")

// User roles: what a person may do (package service decides it).
const (
	UserAdmin    = "admin"    // everything, user management included
	UserOperator = "operator" // devices, groups, backups and jobs on everything
	UserOwner    = "owner"    // a data owner: only what is assigned to them
)

// User is a person who uses the API or the CLI. Tokens act as their user.
type User struct {
	Name         string    `json:"name"`
	Role         string    `json:"role"`
	PasswordHash string    `json:"password_hash,omitempty"` // argon2id PHC string
	Disabled     bool      `json:"disabled,omitempty"`
	Created      time.Time `json:"created"`
}

// CreateUser adds u; it fails with ErrExists if the name is taken.
func (c *Catalog) CreateUser(u User) error {
	if err := c.writable(); err != nil {
		return err
	}
	if err := checkName("user name", u.Name); err != nil {
		return err
	}
	return update(c.res, "catalog: create user "+u.Name, func(tx *bbolt.Tx) error {
		if tx.Bucket(bktUsers).Get([]byte(u.Name)) != nil {
			return fmt.Errorf("catalog: user %s: %w", u.Name, ErrExists)
		}
		return c.resRecords(tx).put(bktUsers, []byte(u.Name), u)
	})
}

// User returns the user called name, or ErrNotFound.
func (c *Catalog) User(name string) (User, error) {
	var u User
	err := view(c.res, "catalog: user "+name, func(tx *bbolt.Tx) error {
		return getUser(c.resRecords(tx), name, &u)
	})
	return u, err
}

func getUser(recs records, name string, u *User) error {
	found, err := recs.get(bktUsers, []byte(name), u)
	switch {
	case err != nil:
		return fmt.Errorf("catalog: user %s: %w", name, err)
	case !found:
		return fmt.Errorf("catalog: user %s: %w", name, ErrNotFound)
	}
	return nil
}

// Users lists every user, by name.
func (c *Catalog) Users() ([]User, error) {
	var us []User
	err := view(c.res, "catalog: users", func(tx *bbolt.Tx) error {
		return c.resRecords(tx).each(bktUsers, func(k []byte, decode func(any) error) error {
			var u User
			if err := decode(&u); err != nil {
				return fmt.Errorf("catalog: user %s: %w", k, err)
			}
			us = append(us, u)
			return nil
		})
	})
	sort.Slice(us, func(i, j int) bool { return us[i].Name < us[j].Name })
	return us, err
}

// UpdateUser applies fn to the user called name in one transaction; an error
// from fn changes nothing. fn may not rename the user.
func (c *Catalog) UpdateUser(name string, fn func(*User) error) error {
	if err := c.writable(); err != nil {
		return err
	}
	return update(c.res, "catalog: update user "+name, func(tx *bbolt.Tx) error {
		recs := c.resRecords(tx)
		var u User
		if err := getUser(recs, name, &u); err != nil {
			return err
		}
		if err := fn(&u); err != nil {
			return err
		}
		if u.Name != name {
			return fmt.Errorf("catalog: user %s: %w: a user cannot be renamed", name, ErrInvalid)
		}
		return recs.put(bktUsers, []byte(name), u)
	})
}
