package catalog

import (
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/fleetvault/fleetvault/settingsdoc"
)

// Restore profiles live in the resource database: each by name, and the
// profile attached to each backup group (its default for restores).
var (
	bktProfiles      = []byte("profiles")       // profile name -> JSON settingsdoc.Profile
	bktGroupProfiles = []byte("group-profiles") // backup group name -> profile name
)

// PutProfile adds or replaces a restore profile after checking it.
func (c *Catalog) PutProfile(p settingsdoc.Profile) error {
	if err := c.writable(); err != nil {
		return err
	}
	if _, err := p.Compile(); err != nil {
		return fmt.Errorf("catalog: %w: %w", ErrInvalid, err)
	}
	v, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return update(c.res, "catalog: put profile "+p.Name, func(tx *bbolt.Tx) error {
		return tx.Bucket(bktProfiles).Put([]byte(p.Name), v)
	})
}

// Profile returns a restore profile by name, or ErrNotFound.
func (c *Catalog) Profile(name string) (settingsdoc.Profile, error) {
	var p settingsdoc.Profile
	err := view(c.res, "catalog: profile "+name, func(tx *bbolt.Tx) error {
		return getProfile(tx, name, &p)
	})
	return p, err
}

func getProfile(tx *bbolt.Tx, name string, p *settingsdoc.Profile) error {
	var v []byte
	if b := tx.Bucket(bktProfiles); b != nil {
		v = b.Get([]byte(name))
	}
	if v == nil {
		return fmt.Errorf("catalog: profile %s: %w", name, ErrNotFound)
	}
	if err := json.Unmarshal(v, p); err != nil {
		return fmt.Errorf("catalog: profile %s: %w: %v", name, ErrCorrupt, err)
	}
	return nil
}

// Profiles lists every restore profile, by name.
func (c *Catalog) Profiles() ([]settingsdoc.Profile, error) {
	var ps []settingsdoc.Profile
	err := view(c.res, "catalog: profiles", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bktProfiles)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var p settingsdoc.Profile
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("catalog: profile %s: %w: %v", k, ErrCorrupt, err)
			}
			ps = append(ps, p)
			return nil
		})
	})
	return ps, err
}

// AttachProfile makes profile the default of restores from a backup group;
// an empty profile detaches the group's default. The profile must exist.
func (c *Catalog) AttachProfile(group, profile string) error {
	if err := c.writable(); err != nil {
		return err
	}
	if err := checkName("backup group", group); err != nil {
		return err
	}
	return update(c.res, "catalog: attach profile to "+group, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bktGroupProfiles)
		if profile == "" {
			return b.Delete([]byte(group))
		}
		var p settingsdoc.Profile
		if err := getProfile(tx, profile, &p); err != nil {
			return err
		}
		return b.Put([]byte(group), []byte(profile))
	})
}

// GroupProfile returns the profile attached to a backup group: its name and
// definition, or "" when none is attached.
func (c *Catalog) GroupProfile(group string) (settingsdoc.Profile, error) {
	var p settingsdoc.Profile
	err := view(c.res, "catalog: profile of "+group, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bktGroupProfiles)
		if b == nil {
			return nil
		}
		name := b.Get([]byte(group))
		if name == nil {
			return nil
		}
		return getProfile(tx, string(name), &p)
	})
	return p, err
}
