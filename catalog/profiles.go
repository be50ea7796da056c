package catalog

import (
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/fleetvault/fleetvault/settingsdoc"
)

// Restore profiles live in the resource database: each by name, and the
// profile attached to each backup group (its default for restores). Both go
// through the one record framing (records), like every resource record.
var (
	bktProfiles      = []byte("profiles")       // profile name -> JSON settingsdoc.Profile
	bktGroupProfiles = []byte("group-profiles") // backup group name -> JSON string: the profile name
)

// PutProfile adds or replaces a restore profile after checking it.
func (c *Catalog) PutProfile(p settingsdoc.Profile) error {
	if err := c.writable(); err != nil {
		return err
	}
	if _, err := p.Compile(); err != nil {
		return fmt.Errorf("catalog: %w: %w", ErrInvalid, err)
	}
	return update(c.res, "catalog: put profile "+p.Name, func(tx *bbolt.Tx) error {
		return c.resRecords(tx).put(bktProfiles, []byte(p.Name), p)
	})
}

// Profile returns a restore profile by name, or ErrNotFound.
func (c *Catalog) Profile(name string) (settingsdoc.Profile, error) {
	var p settingsdoc.Profile
	err := view(c.res, "catalog: profile "+name, func(tx *bbolt.Tx) error {
		return getProfile(c.resRecords(tx), name, &p)
	})
	return p, err
}

func getProfile(recs records, name string, p *settingsdoc.Profile) error {
	found, err := recs.get(bktProfiles, []byte(name), p)
	switch {
	case err != nil:
		return err
	case !found:
		return fmt.Errorf("catalog: profile %s: %w", name, ErrNotFound)
	}
	return nil
}

// Profiles lists every restore profile, by name.
func (c *Catalog) Profiles() ([]settingsdoc.Profile, error) {
	var ps []settingsdoc.Profile
	err := view(c.res, "catalog: profiles", func(tx *bbolt.Tx) error {
		return c.resRecords(tx).each(bktProfiles, func(_ []byte, decode func(any) error) error {
			var p settingsdoc.Profile
			if err := decode(&p); err != nil {
				return err
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
		recs := c.resRecords(tx)
		if profile == "" {
			return tx.Bucket(bktGroupProfiles).Delete([]byte(group))
		}
		var p settingsdoc.Profile
		if err := getProfile(recs, profile, &p); err != nil {
			return err
		}
		return recs.put(bktGroupProfiles, []byte(group), profile)
	})
}

// GroupProfile returns the profile attached to a backup group: its name and
// definition, or "" when none is attached.
func (c *Catalog) GroupProfile(group string) (settingsdoc.Profile, error) {
	var p settingsdoc.Profile
	err := view(c.res, "catalog: profile of "+group, func(tx *bbolt.Tx) error {
		recs := c.resRecords(tx)
		var name string
		found, err := recs.get(bktGroupProfiles, []byte(group), &name)
		if err != nil || !found {
			return err
		}
		return getProfile(recs, name, &p)
	})
	return p, err
}
