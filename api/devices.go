package api

import (
	"github.com/fleetvault/fleetvault/service"

	"github.com/fleetvault/fleetvault/apiclient"

	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sort"
	"strconv"

	"golang.org/x/sync/errgroup"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// Optional keys the API keeps a device's tag and type under.
const (
	optTag  = "tag"
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

func (s *API) handleListDevices(w http.ResponseWriter, r *http.Request) error {
	out := []apiclient.Device{}
	if g := r.URL.Query().Get("group"); g != "" {
		ids, err := s.members(g)
		if err != nil {
			return err
		}
		for _, id := range ids {
			d, err := s.Catalog.Device(id)
			if errors.Is(err, catalog.ErrNotFound) {
				out = append(out, apiclient.Device{ID: id}) // a member not (or no longer) in the resource DB
				continue
			}
			if err != nil {
				return err
			}
			out = append(out, DeviceView(d))
		}
	} else {
		after := r.URL.Query().Get("after")
		limit := 0
		if l := r.URL.Query().Get("limit"); l != "" {
			var err error
			if limit, err = strconv.Atoi(l); err != nil || limit < 1 {
				return errBadRequest("query parameter \"limit\" must be a positive count, not %q", l)
			}
		}
		err := s.Catalog.Devices(func(d catalog.Device) error {
			if after != "" && d.ID <= after {
				return nil
			}
			if limit > 0 && len(out) == limit {
				return errEnough
			}
			out = append(out, DeviceView(d))
			return nil
		})
		if err != nil && !errors.Is(err, errEnough) {
			return fmt.Errorf("list devices: %w", err)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// errEnough stops an iteration early.
var errEnough = errors.New("enough")

func (s *API) handleAddDevices(w http.ResponseWriter, r *http.Request) error {
	b, err := readBody(w, r, maxImportBody)
	if err != nil {
		return err
	}
	var nds []apiclient.NewDevice
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		var one apiclient.NewDevice
		if err := decodeStrict(b, &one); err != nil {
			return err
		}
		nds = []apiclient.NewDevice{one}
	} else if err := decodeStrict(b, &nds); err != nil {
		return err
	}
	res, err := s.addDevices(r, nds, "device")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, res)
	return nil
}

// addDevices validates, hashes and stores devices in one transaction, then
// adds them to their groups. where names the input rows in errors ("device",
// "line"). Unless ?replace=true, existing devices are a conflict.
func (s *API) addDevices(r *http.Request, nds []apiclient.NewDevice, where string) (apiclient.AddDevicesResult, error) {
	replace := r.URL.Query().Get("replace") == "true"
	if len(nds) == 0 {
		return apiclient.AddDevicesResult{}, errBadRequest("no devices given; send a JSON array of {\"id\": ...} objects")
	}
	seen := map[string]bool{}
	var exists []string
	for i, nd := range nds {
		if err := agent.CheckDeviceID(nd.ID); err != nil {
			return apiclient.AddDevicesResult{}, errBadRequest("%s %d: field \"id\" %q: %v", where, i+1, nd.ID, err)
		}
		if seen[nd.ID] {
			return apiclient.AddDevicesResult{}, errBadRequest("%s %d: device %q is given twice", where, i+1, nd.ID)
		}
		seen[nd.ID] = true
		if _, err := grouprestore.DeviceIdentifier(nd.ID, nd.Identifier); err != nil {
			return apiclient.AddDevicesResult{}, errBadRequest("%s %d: field \"identifier\": %v", where, i+1, err)
		}
		if err := nd.Tag.Validate(); len(nd.Tag) > 0 && err != nil {
			return apiclient.AddDevicesResult{}, errBadRequest("%s %d: field \"tag\": %v", where, i+1, err)
		}
		if nd.Group != "" {
			if err := checkGroupName(nd.Group); err != nil {
				return apiclient.AddDevicesResult{}, errBadRequest("%s %d: field \"group\": %v", where, i+1, err)
			}
		}
		if _, err := s.Catalog.Device(nd.ID); err == nil {
			exists = append(exists, nd.ID)
		}
	}
	if len(exists) > 0 && !replace {
		return apiclient.AddDevicesResult{}, errConflict("%d device(s) already exist (%s); delete them first or add ?replace=true to overwrite them", len(exists), listSome(exists))
	}
	devs, added, err := CatalogDevices(nds)
	if err != nil {
		return apiclient.AddDevicesResult{}, err
	}
	res := apiclient.AddDevicesResult{Devices: added}
	if err := s.Catalog.PutDevices(r.Context(), devs); err != nil {
		return apiclient.AddDevicesResult{}, fmt.Errorf("store devices: %w", err)
	}
	created, err := s.addToGroups(nds)
	if err != nil {
		return apiclient.AddDevicesResult{}, err
	}
	res.GroupsCreated = created
	s.log.Info("devices added", "count", len(devs), "groups_created", len(created))
	return res, nil
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

// addToGroups adds devices to the device groups their rows name, creating
// missing groups; it returns the names it created.
func (s *API) addToGroups(nds []apiclient.NewDevice) ([]string, error) {
	created, err := AddToGroups(s.Catalog, nds)
	if errors.Is(err, ErrNotDeviceGroup) {
		return created, errConflict("%v", err)
	}
	return created, err
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

func (s *API) handleGetDevice(w http.ResponseWriter, r *http.Request) error {
	d, err := s.device(r.PathValue("id"))
	if err != nil {
		return err
	}
	v := DeviceView(d)
	if p, err := s.Catalog.Latest(d.ID); err == nil {
		b := BackupView(p)
		v.LatestBackup = &b
	} else if !errors.Is(err, catalog.ErrNotFound) {
		return fmt.Errorf("latest backup of %s: %w", d.ID, err)
	}
	limit := 10
	if l := r.URL.Query().Get("restores"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit < 0 {
			return errBadRequest("query parameter \"restores\" must be a count, not %q", l)
		}
	}
	if limit > 0 {
		v.Restores, err = s.Catalog.Restores(catalog.RestoreQuery{Device: d.ID, Limit: limit})
		if err != nil {
			return fmt.Errorf("restore history of %s: %w", d.ID, err)
		}
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *API) handleDeleteDevice(w http.ResponseWriter, r *http.Request) error {
	d, err := s.device(r.PathValue("id"))
	if err != nil {
		return err
	}
	// Leave no dangling membership behind: a restore would try to reach it.
	groups, err := s.Catalog.Groups()
	if err != nil {
		return fmt.Errorf("list groups: %w", err)
	}
	for _, g := range groups {
		ids, err := s.Catalog.Members(g.Name)
		if err != nil {
			return fmt.Errorf("members of %s: %w", g.Name, err)
		}
		for _, id := range ids {
			if id == d.ID {
				if err := s.Catalog.RemoveMembers(g.Name, []string{d.ID}); err != nil {
					return fmt.Errorf("remove %s from %s: %w", d.ID, g.Name, err)
				}
				break
			}
		}
	}
	if err := s.Catalog.DeleteDevice(d.ID); err != nil {
		return fmt.Errorf("delete device %s: %w", d.ID, err)
	}
	s.log.Info("device deleted", "device", d.ID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// device looks a device up, or returns a 404 suggesting the closest id.
func (s *API) device(id string) (catalog.Device, error) {
	d, err := s.Catalog.Device(id)
	if errors.Is(err, catalog.ErrNotFound) {
		var ids []string
		_ = s.Catalog.Devices(func(d catalog.Device) error { ids = append(ids, d.ID); return nil })
		return d, errNotFound("no device %q%s", id, suggestOr(id, ids, "; list them with GET /api/v1/devices"))
	}
	if err != nil {
		return d, fmt.Errorf("look up device %s: %w", id, err)
	}
	return d, nil
}

// suggestOr is suggest, or otherwise when nothing is close.
func suggestOr(name string, names []string, otherwise string) string {
	if s := service.Suggest(name, names); s != "" {
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
