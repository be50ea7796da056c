package catalog

import (
	"errors"
	"fmt"

	"go.etcd.io/bbolt"
)

// ErrOwned: a device or group already belongs to another data owner.
var ErrOwned = errors.New("belongs to another owner")

// Assignment names the resources given to (or taken from) a data owner.
type Assignment struct {
	Devices      []string `json:"devices,omitempty"`       // device ids
	Groups       []string `json:"groups,omitempty"`        // device groups: the group and every device in it
	BackupGroups []string `json:"backup_groups,omitempty"` // backup groups: the group (its pieces)
}

// AssignOwner makes owner the data owner (the Owner field) of every resource
// in a, in one transaction: all of them or, on error, none. A device group is
// assigned with the devices in it. A resource that already has another owner
// is refused with ErrOwned, naming it: unassign it first.
func (c *Catalog) AssignOwner(owner string, a Assignment) error {
	if err := checkName("owner", owner); err != nil {
		return err
	}
	return c.setOwner("assign to "+owner, a, func(what, cur string) (string, error) {
		if cur != "" && cur != owner {
			return "", fmt.Errorf("catalog: %s: %w %q; unassign it first", what, ErrOwned, cur)
		}
		return owner, nil
	})
}

// UnassignOwner clears the owner of every resource in a that owner holds, in
// one transaction. A resource held by someone else is refused with ErrOwned.
func (c *Catalog) UnassignOwner(owner string, a Assignment) error {
	return c.setOwner("unassign from "+owner, a, func(what, cur string) (string, error) {
		if cur != "" && cur != owner {
			return "", fmt.Errorf("catalog: %s: %w %q, not %q", what, ErrOwned, cur, owner)
		}
		return "", nil
	})
}

// setOwner sets the owner of a's resources to what next returns.
func (c *Catalog) setOwner(verb string, a Assignment, next func(what, cur string) (string, error)) error {
	if err := c.writable(); err != nil {
		return err
	}
	return update(c.res, "catalog: "+verb, func(tx *bbolt.Tx) error {
		devices := append([]string(nil), a.Devices...)
		for _, kind := range []struct {
			names []string
			kind  string
		}{{a.Groups, GroupDevices}, {a.BackupGroups, GroupBackup}} {
			for _, name := range kind.names {
				g, err := c.getGroup(tx, name)
				if err != nil {
					return err
				}
				if g.Kind != kind.kind && !(kind.kind == GroupDevices && g.Kind == "") {
					return fmt.Errorf("catalog: group %s: %w: it is a %q group, not a %q group", name, ErrInvalid, g.Kind, kind.kind)
				}
				if g.Owner, err = next("group "+name, g.Owner); err != nil {
					return err
				}
				if err := c.putGroup(tx, g, true); err != nil {
					return err
				}
				if kind.kind == GroupDevices {
					devices = append(devices, memberIDs(tx, name)...)
				}
			}
		}
		recs := c.resRecords(tx)
		for _, id := range devices {
			var d Device
			if err := c.getDevice(tx, id, &d); err != nil {
				return err
			}
			var err error
			if d.Owner, err = next("device "+id, d.Owner); err != nil {
				return err
			}
			if err := recs.put(bktDevices, []byte(id), d); err != nil {
				return err
			}
		}
		return nil
	})
}

func (c *Catalog) getGroup(tx *bbolt.Tx, name string) (Group, error) {
	var g Group
	found, err := c.resRecords(tx).get(bktGroups, []byte(name), &g)
	switch {
	case err != nil:
		return g, fmt.Errorf("catalog: group %s: %w", name, err)
	case !found:
		return g, fmt.Errorf("catalog: group %s: %w", name, ErrNotFound)
	}
	return g, nil
}

func memberIDs(tx *bbolt.Tx, group string) []string {
	b := tx.Bucket(bktMembers).Bucket([]byte(group))
	if b == nil {
		return nil
	}
	var ids []string
	_ = b.ForEach(func(k, _ []byte) error { // fn never fails
		ids = append(ids, string(k))
		return nil
	})
	return ids
}

// Member is one member of a group: its id and, when the resource database
// has it, the device (Found false: a member id with no device).
type Member struct {
	ID     string
	Device Device
	Found  bool
}

// GroupMembers returns a group and its members with their devices, read in
// one transaction (not one per member).
func (c *Catalog) GroupMembers(group string) (Group, []Member, error) {
	var g Group
	var out []Member
	err := view(c.res, "catalog: members of group "+group, func(tx *bbolt.Tx) error {
		var err error
		if g, err = c.getGroup(tx, group); err != nil {
			return err
		}
		ids := memberIDs(tx, group)
		out = make([]Member, len(ids))
		for i, id := range ids {
			out[i].ID = id
			err := c.getDevice(tx, id, &out[i].Device)
			switch {
			case err == nil:
				out[i].Found = true
			case !errors.Is(err, ErrNotFound):
				return err
			}
		}
		return nil
	})
	return g, out, err
}

// DeviceOwners returns the owner of each of ids that has one, in one
// transaction; unknown ids are left out.
func (c *Catalog) DeviceOwners(ids []string) (map[string]string, error) {
	out := map[string]string{}
	err := view(c.res, "catalog: device owners", func(tx *bbolt.Tx) error {
		for _, id := range ids {
			var d Device
			err := c.getDevice(tx, id, &d)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if d.Owner != "" {
				out[id] = d.Owner
			}
		}
		return nil
	})
	return out, err
}

// DeleteDeviceEverywhere removes a device and its membership of every group,
// in one transaction, so that no restore tries to reach it. An unknown id is
// ErrNotFound.
func (c *Catalog) DeleteDeviceEverywhere(id string) error {
	if err := c.writable(); err != nil {
		return err
	}
	return update(c.res, "catalog: delete device "+id, func(tx *bbolt.Tx) error {
		var d Device
		if err := c.getDevice(tx, id, &d); err != nil {
			return err
		}
		members := tx.Bucket(bktMembers)
		err := members.ForEachBucket(func(group []byte) error {
			return members.Bucket(group).Delete([]byte(id))
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bktDevices).Delete([]byte(id))
	})
}

// GroupsWithCounts lists every group's own information, by name, with its
// member count, in one transaction.
func (c *Catalog) GroupsWithCounts() ([]Group, map[string]int, error) {
	var gs []Group
	counts := map[string]int{}
	err := view(c.res, "catalog: groups", func(tx *bbolt.Tx) error {
		members := tx.Bucket(bktMembers)
		return c.resRecords(tx).each(bktGroups, func(k []byte, decode func(any) error) error {
			var g Group
			if err := decode(&g); err != nil {
				return fmt.Errorf("catalog: group %s: %w", k, err)
			}
			gs = append(gs, g)
			if b := members.Bucket(k); b != nil {
				counts[g.Name] = b.Stats().KeyN
			}
			return nil
		})
	})
	return gs, counts, err
}
