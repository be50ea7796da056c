package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"go.etcd.io/bbolt"

	"github.com/fleetvault/fleetvault/identifiers"
)

// Resource database buckets.
var (
	bktDevices     = []byte("devices")
	bktGroups      = []byte("groups")
	bktMembers     = []byte("members") // one nested bucket per group: member id -> nothing
	bktReplication = []byte("replication")
	bktRetention   = []byte("retention")
	keyRules       = []byte("rules")
)

// Device roles.
const (
	RoleDevice = "device" // a client: a device whose settings are backed up
	RoleServer = "server" // the backup server's own identity (publishes requests)
	// RoleCatalogServer is a catalog server (the article's resource type):
	// Catalog names the catalog it keeps, Identifier where it is.
	RoleCatalogServer = "catalog-server"
)

// Device is a resource of type client (or server): one row of the resource
// database. Device(id) is one bbolt lookup: the broker calls it on every
// connect to check PasswordHash and Role.
type Device struct {
	ID           string            `json:"id"`
	Domain       string            `json:"domain,omitempty"`   // e.g. "North Africa", "Asia"
	Category     string            `json:"category,omitempty"` // e.g. "critical", "non-critical"
	Owner        string            `json:"owner,omitempty"`    // data owner: who may restore
	Catalog      string            `json:"catalog,omitempty"`  // the catalog its pieces go to; "" = default
	Identifier   string            `json:"identifier,omitempty"`
	PasswordHash string            `json:"password_hash,omitempty"`
	Role         string            `json:"role,omitempty"`
	Optional     map[string]string `json:"optional,omitempty"`
}

// Group kinds.
const (
	GroupDevices = "devices" // a device group: targets of a group restore
	GroupBackup  = "backup"  // a backup group: the clients whose pieces form it
)

// Group is a resource of type group: its own information; its members are
// stored one key each and read with Members.
type Group struct {
	Name        string            `json:"name"`
	Kind        string            `json:"kind,omitempty"` // GroupDevices or GroupBackup
	Domain      string            `json:"domain,omitempty"`
	Category    string            `json:"category,omitempty"`
	Owner       string            `json:"owner,omitempty"`
	Schedule    string            `json:"schedule,omitempty"` // backup schedule, e.g. a cron line
	Description string            `json:"description,omitempty"`
	Optional    map[string]string `json:"optional,omitempty"`
}

func initResources(tx *bbolt.Tx) error {
	for _, b := range [][]byte{bktDevices, bktGroups, bktMembers, bktReplication, bktRetention, bktProfiles, bktGroupProfiles} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	return nil
}

func checkName(what, s string) error {
	if s == "" {
		return fmt.Errorf("catalog: %w: empty %s", ErrInvalid, what)
	}
	if strings.ContainsRune(s, 0) {
		return fmt.Errorf("catalog: %w: %s %q contains a NUL byte", ErrInvalid, what, s)
	}
	return nil
}

// PutDevices adds or replaces devices, all in one transaction.
func (c *Catalog) PutDevices(ctx context.Context, ds []Device) error {
	if err := c.writable(); err != nil {
		return err
	}
	for _, d := range ds {
		if err := checkName("device id", d.ID); err != nil {
			return err
		}
		if d.Catalog != "" {
			if _, ok := c.byName[d.Catalog]; !ok {
				return fmt.Errorf("catalog: device %s: %w: catalog %q is not in the MBR", d.ID, ErrInvalid, d.Catalog)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return batch(c.res, "catalog: put devices", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bktDevices)
		for _, d := range ds {
			v, err := json.Marshal(d)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(d.ID), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// Device returns the device with this id, or ErrNotFound.
func (c *Catalog) Device(id string) (Device, error) {
	var d Device
	err := view(c.res, "catalog: device "+id, func(tx *bbolt.Tx) error {
		return getDevice(tx, id, &d)
	})
	return d, err
}

func getDevice(tx *bbolt.Tx, id string, d *Device) error {
	b := tx.Bucket(bktDevices)
	var v []byte
	if b != nil {
		v = b.Get([]byte(id))
	}
	if v == nil {
		return fmt.Errorf("catalog: device %s: %w", id, ErrNotFound)
	}
	if err := json.Unmarshal(v, d); err != nil {
		return fmt.Errorf("catalog: device %s: %w: %v", id, ErrCorrupt, err)
	}
	return nil
}

// DeleteDevice removes a device (its group memberships stay until removed).
func (c *Catalog) DeleteDevice(id string) error {
	if err := c.writable(); err != nil {
		return err
	}
	return update(c.res, "catalog: delete device "+id, func(tx *bbolt.Tx) error {
		return tx.Bucket(bktDevices).Delete([]byte(id))
	})
}

// Devices calls fn for every device, in id order; an error from fn stops it.
func (c *Catalog) Devices(fn func(Device) error) error {
	return view(c.res, "catalog: devices", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bktDevices)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var d Device
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("catalog: device %s: %w: %v", k, ErrCorrupt, err)
			}
			return fn(d)
		})
	})
}

// CreateGroup creates group name; it fails with ErrExists if it exists.
func (c *Catalog) CreateGroup(name string, g Group) error {
	if err := c.writable(); err != nil {
		return err
	}
	if err := checkName("group name", name); err != nil {
		return err
	}
	g.Name = name
	return update(c.res, "catalog: create group "+name, func(tx *bbolt.Tx) error {
		return putGroup(tx, g, false)
	})
}

// PutGroup creates or updates a group's own information (not its members).
func (c *Catalog) PutGroup(g Group) error {
	if err := c.writable(); err != nil {
		return err
	}
	if err := checkName("group name", g.Name); err != nil {
		return err
	}
	return update(c.res, "catalog: put group "+g.Name, func(tx *bbolt.Tx) error {
		return putGroup(tx, g, true)
	})
}

func putGroup(tx *bbolt.Tx, g Group, replace bool) error {
	b := tx.Bucket(bktGroups)
	if !replace && b.Get([]byte(g.Name)) != nil {
		return fmt.Errorf("catalog: group %s: %w", g.Name, ErrExists)
	}
	v, err := json.Marshal(g)
	if err != nil {
		return err
	}
	if err := b.Put([]byte(g.Name), v); err != nil {
		return err
	}
	_, err = tx.Bucket(bktMembers).CreateBucketIfNotExists([]byte(g.Name))
	return err
}

// Group returns a group's own information, or ErrNotFound.
func (c *Catalog) Group(name string) (Group, error) {
	var g Group
	err := view(c.res, "catalog: group "+name, func(tx *bbolt.Tx) error {
		v := tx.Bucket(bktGroups).Get([]byte(name))
		if v == nil {
			return fmt.Errorf("catalog: group %s: %w", name, ErrNotFound)
		}
		if err := json.Unmarshal(v, &g); err != nil {
			return fmt.Errorf("catalog: group %s: %w: %v", name, ErrCorrupt, err)
		}
		return nil
	})
	return g, err
}

// Groups lists every group's own information, by name.
func (c *Catalog) Groups() ([]Group, error) {
	var gs []Group
	err := view(c.res, "catalog: groups", func(tx *bbolt.Tx) error {
		return tx.Bucket(bktGroups).ForEach(func(k, v []byte) error {
			var g Group
			if err := json.Unmarshal(v, &g); err != nil {
				return fmt.Errorf("catalog: group %s: %w: %v", k, ErrCorrupt, err)
			}
			gs = append(gs, g)
			return nil
		})
	})
	return gs, err
}

// AddMembers adds ids to a group, one key each, in one transaction.
func (c *Catalog) AddMembers(group string, ids []string) error {
	return c.editMembers("add members to", group, ids, func(b *bbolt.Bucket, id []byte) error { return b.Put(id, nil) })
}

// RemoveMembers removes ids from a group; absent ids are ignored.
func (c *Catalog) RemoveMembers(group string, ids []string) error {
	return c.editMembers("remove members from", group, ids, func(b *bbolt.Bucket, id []byte) error { return b.Delete(id) })
}

func (c *Catalog) editMembers(verb, group string, ids []string, op func(*bbolt.Bucket, []byte) error) error {
	if err := c.writable(); err != nil {
		return err
	}
	for _, id := range ids {
		if err := checkName("member id", id); err != nil {
			return err
		}
	}
	return batch(c.res, "catalog: "+verb+" group "+group, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bktMembers).Bucket([]byte(group))
		if b == nil {
			return fmt.Errorf("catalog: group %s: %w", group, ErrNotFound)
		}
		for _, id := range ids {
			if err := op(b, []byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Members lists a group's member ids in order.
func (c *Catalog) Members(group string) ([]string, error) {
	var ids []string
	err := view(c.res, "catalog: members of group "+group, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bktMembers).Bucket([]byte(group))
		if b == nil {
			return fmt.Errorf("catalog: group %s: %w", group, ErrNotFound)
		}
		ids = make([]string, 0, b.Stats().KeyN)
		return b.ForEach(func(k, _ []byte) error {
			ids = append(ids, string(k))
			return nil
		})
	})
	return ids, err
}

// Replication returns the replication rules: which local endpoints are
// replicated to which DR endpoints, for identifiers.Rewrite in DR mode.
func (c *Catalog) Replication() ([]identifiers.Rule, error) {
	var rules []identifiers.Rule
	err := view(c.res, "catalog: replication", func(tx *bbolt.Tx) error {
		v := tx.Bucket(bktReplication).Get(keyRules)
		if v == nil {
			return nil
		}
		var recs []ruleRecord
		if err := json.Unmarshal(v, &recs); err != nil {
			return fmt.Errorf("catalog: replication rules: %w: %v", ErrCorrupt, err)
		}
		for _, r := range recs {
			rules = append(rules, r.rule())
		}
		return nil
	})
	return rules, err
}

// SetReplication replaces the replication rules.
func (c *Catalog) SetReplication(rules []identifiers.Rule) error {
	if err := c.writable(); err != nil {
		return err
	}
	for i, r := range rules {
		if r.Local.Host == "" || r.Remote.Host == "" {
			return fmt.Errorf("catalog: replication rule %d: %w: local and remote hosts are required", i, ErrInvalid)
		}
	}
	recs := make([]ruleRecord, len(rules))
	for i, r := range rules {
		recs[i] = toRuleRecord(r)
	}
	v, err := json.Marshal(recs)
	if err != nil {
		return err
	}
	return update(c.res, "catalog: set replication", func(tx *bbolt.Tx) error {
		return tx.Bucket(bktReplication).Put(keyRules, v)
	})
}

// RewriteForSite returns id as this site must use it: rewritten with the
// replication rules in DR mode, unchanged otherwise.
func (c *Catalog) RewriteForSite(id identifiers.ID) (identifiers.ID, error) {
	if !c.DRMode() {
		return id, nil
	}
	rules, err := c.Replication()
	if err != nil {
		return id, err
	}
	return identifiers.Rewrite(id, rules), nil
}

// sortedKeys returns m's keys in order, for deterministic output.
func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// ruleRecord is a replication rule as stored: the article's table row
// (local IP, local port, remote IP, remote port; port 0 = any/unchanged).
type ruleRecord struct {
	LocalHost  string `json:"local_host"`
	LocalPort  int    `json:"local_port,omitempty"`
	RemoteHost string `json:"remote_host"`
	RemotePort int    `json:"remote_port,omitempty"`
}

func toRuleRecord(r identifiers.Rule) ruleRecord {
	return ruleRecord{r.Local.Host, r.Local.Port, r.Remote.Host, r.Remote.Port}
}

func (r ruleRecord) rule() identifiers.Rule {
	return identifiers.Rule{
		Local:  identifiers.Endpoint{Host: r.LocalHost, Port: r.LocalPort},
		Remote: identifiers.Endpoint{Host: r.RemoteHost, Port: r.RemotePort},
	}
}
