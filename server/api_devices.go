package server

import (
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
	"github.com/fleetvault/fleetvault/agent/coap"
	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// NewDevice is one device to add (POST /api/v1/devices).
type NewDevice struct {
	ID         string       `json:"id"`
	Password   string       `json:"password,omitempty"`   // absent: one is generated and returned once
	Identifier string       `json:"identifier,omitempty"` // absent: mqtt://<id>
	Tag        tagmatch.Tag `json:"tag,omitempty"`
	Domain     string       `json:"domain,omitempty"`
	Category   string       `json:"category,omitempty"`
	Owner      string       `json:"owner,omitempty"`
	Group      string       `json:"group,omitempty"` // also add it to this device group (created if missing)
	Type       string       `json:"type,omitempty"`  // device type, informational
	// CoAPKey is the device's DTLS pre-shared key in hexadecimal (32 to 128
	// digits); a coaps:// device needs one.
	CoAPKey string `json:"coap_key,omitempty"`
}

// Device is a device as the API shows it: never its password hash.
type Device struct {
	ID          string            `json:"id"`
	Identifier  string            `json:"identifier,omitempty"`
	Domain      string            `json:"domain,omitempty"`
	Category    string            `json:"category,omitempty"`
	Owner       string            `json:"owner,omitempty"`
	Catalog     string            `json:"catalog,omitempty"`
	Role        string            `json:"role,omitempty"`
	Tag         tagmatch.Tag      `json:"tag,omitempty"`
	HasPassword bool              `json:"has_password"`
	Optional    map[string]string `json:"optional,omitempty"`
	// Filled by GET /devices/{id} only.
	LatestBackup *Backup                `json:"latest_backup,omitempty"`
	Restores     []catalog.RestoreEvent `json:"restores,omitempty"`
}

// AddedDevice is one line of an add or import answer. Password is set only
// when the server generated it: it is shown this once and stored hashed.
type AddedDevice struct {
	ID       string `json:"id"`
	Password string `json:"password,omitempty"`
	Group    string `json:"group,omitempty"`
}

// AddDevicesResult answers POST /devices and POST /devices/import.
type AddDevicesResult struct {
	Devices       []AddedDevice `json:"devices"`
	GroupsCreated []string      `json:"groups_created,omitempty"`
}

// Optional keys the API keeps a device's tag and type under.
const (
	optTag  = catalog.OptionalTag
	optType = "type"
)

// DeviceView is how the API shows a device of the resource database.
func DeviceView(d catalog.Device) Device {
	v := Device{ID: d.ID, Identifier: d.Identifier, Domain: d.Domain, Category: d.Category, Owner: d.Owner,
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

func (s *Server) handleListDevices(w http.ResponseWriter, r *http.Request) error {
	out := []Device{}
	if g := r.URL.Query().Get("group"); g != "" {
		ids, err := s.members(g)
		if err != nil {
			return err
		}
		for _, id := range ids {
			d, err := s.Catalog.Device(id)
			if errors.Is(err, catalog.ErrNotFound) {
				out = append(out, Device{ID: id}) // a member not (or no longer) in the resource DB
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

func (s *Server) handleAddDevices(w http.ResponseWriter, r *http.Request) error {
	b, err := readBody(w, r, maxImportBody)
	if err != nil {
		return err
	}
	var nds []NewDevice
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		var one NewDevice
		if err := decodeStrict(b, &one); err != nil {
			return err
		}
		nds = []NewDevice{one}
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
func (s *Server) addDevices(r *http.Request, nds []NewDevice, where string) (AddDevicesResult, error) {
	replace := r.URL.Query().Get("replace") == "true"
	if len(nds) == 0 {
		return AddDevicesResult{}, errBadRequest("no devices given; send a JSON array of {\"id\": ...} objects")
	}
	seen := map[string]bool{}
	var exists []string
	for i, nd := range nds {
		if err := agent.CheckDeviceID(nd.ID); err != nil {
			return AddDevicesResult{}, errBadRequest("%s %d: field \"id\" %q: %v", where, i+1, nd.ID, err)
		}
		if seen[nd.ID] {
			return AddDevicesResult{}, errBadRequest("%s %d: device %q is given twice", where, i+1, nd.ID)
		}
		seen[nd.ID] = true
		if _, err := grouprestore.DeviceIdentifier(nd.ID, nd.Identifier); err != nil {
			return AddDevicesResult{}, errBadRequest("%s %d: field \"identifier\": %v", where, i+1, err)
		}
		if err := nd.Tag.Validate(); len(nd.Tag) > 0 && err != nil {
			return AddDevicesResult{}, errBadRequest("%s %d: field \"tag\": %v", where, i+1, err)
		}
		if nd.Group != "" {
			if err := checkGroupName(nd.Group); err != nil {
				return AddDevicesResult{}, errBadRequest("%s %d: field \"group\": %v", where, i+1, err)
			}
		}
		if _, err := s.Catalog.Device(nd.ID); err == nil {
			exists = append(exists, nd.ID)
		}
	}
	if len(exists) > 0 && !replace {
		return AddDevicesResult{}, errConflict("%d device(s) already exist (%s); delete them first or add ?replace=true to overwrite them", len(exists), listSome(exists))
	}
	devs, added, err := CatalogDevices(nds)
	if err != nil {
		return AddDevicesResult{}, err
	}
	res := AddDevicesResult{Devices: added}
	if err := s.Catalog.PutDevices(r.Context(), devs); err != nil {
		return AddDevicesResult{}, fmt.Errorf("store devices: %w", err)
	}
	created, err := s.addToGroups(nds)
	if err != nil {
		return AddDevicesResult{}, err
	}
	res.GroupsCreated = created
	s.log.Info("devices added", "count", len(devs), "groups_created", len(created))
	return res, nil
}

// CatalogDevices turns checked new devices into resource-database devices,
// hashing each password (generating one when absent, returned once in the
// AddedDevice). Hashing dominates a large import: it is spread over the cores.
func CatalogDevices(nds []NewDevice) ([]catalog.Device, []AddedDevice, error) {
	devs := make([]catalog.Device, len(nds))
	added := make([]AddedDevice, len(nds))
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, nd := range nds {
		g.Go(func() error {
			d, pw, err := toCatalogDevice(nd)
			if err != nil {
				return err
			}
			devs[i] = d
			added[i] = AddedDevice{ID: nd.ID, Password: pw, Group: nd.Group}
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
func toCatalogDevice(nd NewDevice) (catalog.Device, string, error) {
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

// addToGroups adds devices to the device groups their rows name, creating
// missing groups; it returns the names it created.
func (s *Server) addToGroups(nds []NewDevice) ([]string, error) {
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
func AddToGroups(c *catalog.Catalog, nds []NewDevice) ([]string, error) {
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

func (s *Server) handleGetDevice(w http.ResponseWriter, r *http.Request) error {
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

func (s *Server) handleDeleteDevice(w http.ResponseWriter, r *http.Request) error {
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
func (s *Server) device(id string) (catalog.Device, error) {
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
