package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sort"

	"golang.org/x/sync/errgroup"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/agent/coap"
	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// DeviceQuery selects devices: the members of Group, or every device after
// After (by id), at most Limit (0: all).
type DeviceQuery struct {
	Group string
	After string
	Limit int
}

// ListDevices lists the devices q selects that the caller may see, by id.
func (ss *Session) ListDevices(_ context.Context, q DeviceQuery) ([]apiclient.Device, error) {
	out := []apiclient.Device{}
	if q.Group != "" {
		_, members, err := ss.groupMembers(q.Group)
		if err != nil {
			return nil, err
		}
		for _, m := range members {
			switch {
			case !m.Found && !ss.id.owner():
				out = append(out, apiclient.Device{ID: m.ID}) // a member not (or no longer) in the resource DB
			case m.Found && ss.id.ownsDevice(m.Device):
				out = append(out, DeviceView(m.Device))
			}
		}
		return out, nil
	}
	err := ss.s.cat.Devices(func(d catalog.Device) error {
		if (q.After != "" && d.ID <= q.After) || !ss.id.ownsDevice(d) {
			return nil
		}
		if q.Limit > 0 && len(out) == q.Limit {
			return errEnough
		}
		out = append(out, DeviceView(d))
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Devices lists the members of group ("" every device), as the client does.
func (ss *Session) Devices(ctx context.Context, group string) ([]apiclient.Device, error) {
	return ss.ListDevices(ctx, DeviceQuery{Group: group})
}

// errEnough stops an iteration early.
var errEnough = errors.New("enough")

// AddDevices checks, hashes and stores devices in one transaction, then adds
// them to their groups (creating missing ones). Unless replace, a device that
// exists is a conflict. Only an admin or an operator may.
func (ss *Session) AddDevices(ctx context.Context, nds []apiclient.NewDevice, replace bool) (apiclient.AddDevicesResult, error) {
	ids := make([]string, len(nds))
	for i, nd := range nds {
		ids[i] = nd.ID
	}
	var res apiclient.AddDevicesResult
	err := ss.audited("device.add", ids, func() error {
		var err error
		res, err = ss.addDevices(ctx, nds, replace)
		return err
	})
	return res, err
}

func (ss *Session) addDevices(ctx context.Context, nds []apiclient.NewDevice, replace bool) (apiclient.AddDevicesResult, error) {
	if err := ss.id.requireManage("add devices"); err != nil {
		return apiclient.AddDevicesResult{}, err
	}
	if err := ss.checkNewDevices(nds, replace); err != nil {
		return apiclient.AddDevicesResult{}, err
	}
	devs, added, err := CatalogDevices(nds)
	if err != nil {
		return apiclient.AddDevicesResult{}, err
	}
	res := apiclient.AddDevicesResult{Devices: added}
	if err := ss.s.cat.PutDevices(ctx, devs); err != nil {
		return apiclient.AddDevicesResult{}, fmt.Errorf("store devices: %w", err)
	}
	created, err := AddToGroups(ss.s.cat, nds)
	if errors.Is(err, ErrNotDeviceGroup) {
		return res, errorf(ErrConflict, "%v", err)
	}
	if err != nil {
		return res, err
	}
	res.GroupsCreated = created
	ss.s.log.Info("devices added", "count", len(devs), "groups_created", len(created), "user", ss.id.User)
	return res, nil
}

// checkNewDevices validates every device before anything is stored, naming
// the row at fault ("device 3: ...").
func (ss *Session) checkNewDevices(nds []apiclient.NewDevice, replace bool) error {
	if len(nds) == 0 {
		return errorf(ErrInvalid, "no devices given; send a JSON array of {\"id\": ...} objects")
	}
	seen := map[string]bool{}
	var exists []string
	for i, nd := range nds {
		if err := checkDeviceID(nd.ID); err != nil {
			return errorf(ErrInvalid, "device %d: field \"id\" %q: %v", i+1, nd.ID, err)
		}
		if seen[nd.ID] {
			return errorf(ErrInvalid, "device %d: device %q is given twice", i+1, nd.ID)
		}
		seen[nd.ID] = true
		if _, err := grouprestore.DeviceIdentifier(nd.ID, nd.Identifier); err != nil {
			return errorf(ErrInvalid, "device %d: field \"identifier\": %v", i+1, err)
		}
		if err := nd.Tag.Validate(); len(nd.Tag) > 0 && err != nil {
			return errorf(ErrInvalid, "device %d: field \"tag\": %v", i+1, err)
		}
		if err := catalog.CheckCategory(nd.Category); err != nil {
			return errorf(ErrInvalid, "device %d: field \"category\" must be %s or %s, not %q", i+1, catalog.CategoryCritical, catalog.CategoryNonCritical, nd.Category)
		}
		if nd.Group != "" {
			if err := CheckName("group", nd.Group); err != nil {
				return errorf(ErrInvalid, "device %d: field \"group\": %v", i+1, err)
			}
		}
		if _, err := ss.s.cat.Device(nd.ID); err == nil {
			exists = append(exists, nd.ID)
		}
	}
	if len(exists) > 0 && !replace {
		return errorf(ErrConflict, "%d device(s) already exist (%s); delete them first or add ?replace=true to overwrite them", len(exists), listSome(exists))
	}
	return nil
}

// checkDeviceID is the agent's rule for device ids (they are MQTT topic
// levels) and the service's rule for names.
func checkDeviceID(id string) error {
	if err := agent.CheckDeviceID(id); err != nil {
		return err
	}
	return CheckName("device", id)
}

// DeviceDetail returns a device with its latest backup and up to restores
// entries of its restore history.
func (ss *Session) DeviceDetail(_ context.Context, id string, restores int) (apiclient.Device, error) {
	d, err := ss.device(id)
	if err != nil {
		return apiclient.Device{}, err
	}
	v := DeviceView(d)
	if p, err := ss.s.cat.Latest(d.ID); err == nil {
		b := BackupView(p)
		v.LatestBackup = &b
	} else if !errors.Is(err, catalog.ErrNotFound) {
		return v, fmt.Errorf("latest backup of %s: %w", d.ID, err)
	}
	if restores > 0 {
		v.Restores, err = ss.s.cat.Restores(catalog.RestoreQuery{Device: d.ID, Limit: restores})
		if err != nil {
			return v, fmt.Errorf("restore history of %s: %w", d.ID, err)
		}
	}
	return v, nil
}

// Device returns a device with its latest backup and its last ten restores.
func (ss *Session) Device(ctx context.Context, id string) (apiclient.Device, error) {
	return ss.DeviceDetail(ctx, id, 10)
}

// DeleteDevice removes a device and its group memberships (so no restore
// tries to reach it). Only an admin or an operator may.
func (ss *Session) DeleteDevice(_ context.Context, id string) error {
	return ss.audited("device.delete", []string{id}, func() error {
		d, err := ss.device(id)
		if err != nil {
			return err
		}
		if err := ss.id.requireManage("delete devices"); err != nil {
			return err
		}
		if err := ss.s.cat.DeleteDeviceEverywhere(d.ID); err != nil {
			return fmt.Errorf("delete device %s: %w", d.ID, err)
		}
		ss.s.log.Info("device deleted", "device", d.ID, "user", ss.id.User)
		return nil
	})
}

// device looks up a device the caller may see, or returns ErrNotFound
// suggesting the closest id among those they may see.
func (ss *Session) device(id string) (catalog.Device, error) {
	d, err := ss.s.cat.Device(id)
	if err == nil && !ss.id.ownsDevice(d) {
		err = catalog.ErrNotFound
	}
	if errors.Is(err, catalog.ErrNotFound) {
		var ids []string
		_ = ss.s.cat.Devices(func(d catalog.Device) error {
			if ss.id.ownsDevice(d) {
				ids = append(ids, d.ID)
			}
			return nil
		})
		return catalog.Device{}, errorf(ErrNotFound, "no device %q%s", id, suggestOr(id, ids, "; list them with GET /api/v1/devices"))
	}
	if err != nil {
		return d, fmt.Errorf("look up device %s: %w", id, err)
	}
	return d, nil
}

// Optional keys the API keeps a device's tag and type under.
const (
	optTag  = catalog.OptionalTag
	optType = "type"
)

// DeviceView is how the API shows a device of the resource database.
func DeviceView(d catalog.Device) apiclient.Device {
	v := apiclient.Device{ID: d.ID, Identifier: d.Identifier, Domain: d.Domain, Category: d.Category, Owner: d.Owner,
		Catalog: d.Catalog, Role: d.Role, HasPassword: d.PasswordHash != ""}
	for k, val := range d.Optional {
		if k == optTag {
			if t, err := tagmatch.ParseKV(val); err == nil {
				v.Tag = t
				continue
			}
		}
		if v.Optional == nil {
			v.Optional = map[string]string{}
		}
		v.Optional[k] = val
	}
	return v
}

// CatalogDevices turns checked new devices into resource-database devices,
// hashing each password (generating one when absent, returned once in the
// AddedDevice). Hashing dominates a large import: it is spread over the cores.
func CatalogDevices(nds []apiclient.NewDevice) ([]catalog.Device, []apiclient.AddedDevice, error) {
	devs := make([]catalog.Device, len(nds))
	added := make([]apiclient.AddedDevice, len(nds))
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, nd := range nds {
		g.Go(func() error {
			d, pw, err := toCatalogDevice(nd)
			if err != nil {
				return err
			}
			devs[i] = d
			added[i] = apiclient.AddedDevice{ID: nd.ID, Password: pw, Group: nd.Group}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	return devs, added, nil
}

// toCatalogDevice hashes the password, generating one when absent; pw is
// the generated one ("" when given).
func toCatalogDevice(nd apiclient.NewDevice) (catalog.Device, string, error) {
	pw, generated := nd.Password, ""
	if pw == "" {
		pw = broker.NewSecret()
		generated = pw
	} else if err := broker.CheckPassword(pw); err != nil {
		return catalog.Device{}, "", &FieldError{Field: "password", Problem: fmt.Sprintf("of device %s: %v", nd.ID, err)}
	}
	hash, err := broker.HashPassword(pw)
	if err != nil {
		return catalog.Device{}, "", fmt.Errorf("hash the password of %s: %w", nd.ID, err)
	}
	ident := nd.Identifier
	if ident == "" {
		ident = "mqtt://" + nd.ID
	}
	d := catalog.Device{ID: nd.ID, Identifier: ident, Domain: nd.Domain, Category: nd.Category, Owner: nd.Owner,
		PasswordHash: hash, Role: catalog.RoleDevice}
	if d.CoAPPSKSecret, err = coap.KeyFor(ident, nd.CoAPKey); err != nil {
		return catalog.Device{}, "", fmt.Errorf("device %s: %w", nd.ID, err)
	}
	if len(nd.Tag) > 0 || nd.Type != "" {
		d.Optional = map[string]string{}
		if len(nd.Tag) > 0 {
			d.Optional[optTag] = nd.Tag.String()
		}
		if nd.Type != "" {
			d.Optional[optType] = nd.Type
		}
	}
	return d, generated, nil
}

// ErrNotDeviceGroup is wrapped when devices would join a backup group.
var ErrNotDeviceGroup = errors.New("devices can only join device groups")

// AddToGroups adds each device to its Group, creating missing groups as
// device groups, and returns the groups it created.
func AddToGroups(c *catalog.Catalog, nds []apiclient.NewDevice) ([]string, error) {
	byGroup := map[string][]string{}
	for _, nd := range nds {
		if nd.Group != "" {
			byGroup[nd.Group] = append(byGroup[nd.Group], nd.ID)
		}
	}
	names := make([]string, 0, len(byGroup))
	for g := range byGroup {
		names = append(names, g)
	}
	sort.Strings(names)
	var created []string
	for _, g := range names {
		err := c.CreateGroup(g, catalog.Group{Name: g, Kind: catalog.GroupDevices})
		switch {
		case err == nil:
			created = append(created, g)
		case errors.Is(err, catalog.ErrExists):
			if grp, err := c.Group(g); err == nil && grp.Kind == catalog.GroupBackup {
				return created, fmt.Errorf("group %q is a backup group; %w", g, ErrNotDeviceGroup)
			}
		default:
			return created, fmt.Errorf("create group %s: %w", g, err)
		}
		if err := c.AddMembers(g, byGroup[g]); err != nil {
			return created, fmt.Errorf("add devices to group %s: %w", g, err)
		}
	}
	return created, nil
}

// suggestOr is suggest, or otherwise when nothing is close.
func suggestOr(name string, names []string, otherwise string) string {
	if s := Suggest(name, names); s != "" {
		return s
	}
	return otherwise
}

// listSome lists up to five names, then how many more.
func listSome(names []string) string {
	if len(names) <= 5 {
		b, _ := json.Marshal(names)
		return string(b)
	}
	b, _ := json.Marshal(names[:5])
	return fmt.Sprintf("%s and %d more", b, len(names)-5)
}
