package devicesim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/fleetvault/fleetvault/settingsdoc"
)

// MaxDevices bounds the size of one fleet, so a typo (sites: 1e9) is an error
// rather than an exhausted machine.
const MaxDevices = 1_000_000

// maxFileBytes bounds a fleet file.
const maxFileBytes = 4 << 20

// Transports a device type may use.
const (
	TransportMQTT = "mqtt"
	TransportCoAP = "coap"
)

// Spec is a parsed fleet file: device types and the groups of sites that hold them.
type Spec struct {
	File   string // where it was read from, for messages
	Name   string
	Seed   uint64 // default seed; Options.Seed overrides it when not zero
	Types  []*DeviceType
	Groups []*Group

	// RestoreProfile, when set, is the restore profile the fleet's restores
	// use (the fleet file's restore_profile).
	RestoreProfile *settingsdoc.Profile
}

// DeviceType is a kind of device: its tag template, settings and faults.
type DeviceType struct {
	Name      string
	Transport string // TransportMQTT or TransportCoAP
	Tag       []TagField
	Factory   map[string]gen // factory settings of new devices
	Reference []Overlay      // tuned settings of reference devices, by tag
	Faults    Faults
}

// TagField is one attribute of a type's tag template, in order.
type TagField struct {
	Key   string
	Value Value
}

// Overlay is applied over the factory settings of reference devices whose tag
// has every When key with that value.
type Overlay struct {
	When map[string]string
	Set  map[string]gen
}

// Faults say what goes wrong with some devices of a type. Shares are fractions
// of the type's devices (in groups with faults on); exactly round(share*count)
// devices get each fault, chosen with the seed.
type Faults struct {
	Offline float64 // never come online
	Late    Late    // come online after a delay
	Latency Dist    // every device: delay before answering
	Slow    Slow    // some devices: a much longer delay (e.g. beyond a timeout)
	Drop    float64 // ignore every request
	Reject  float64 // Apply refuses settings (agent.ErrRejected)
	Corrupt float64 // store a corrupted copy, so the answered hash differs
	Reboot  Reboot  // reboot on the first write, without answering
	// Devices that break the protocol's word (agent-protocol.md section 9,
	// agent-coap.md section 1), to prove the server keeps its own:
	NoCaps   float64 // announce no capabilities at all (no caps in answers)
	ReadOnly float64 // announce read-tag and read-settings only
	WrongID  float64 // answer with another device id ("<id>-impostor")
}

// Late describes late joiners.
type Late struct {
	Share float64
	After Dist
}

// Slow describes devices slower than usual.
type Slow struct {
	Share   float64
	Latency Dist
}

// Reboot describes devices that reboot when they receive a write: they go
// offline without answering and come back after Down, with the write applied
// with probability Applied.
type Reboot struct {
	Share   float64
	Down    Dist
	Applied float64
}

// Group is a named set of sites (homes, offices), each with the same devices.
type Group struct {
	Name      string
	Reference bool // devices hold the reference (tuned) settings
	Faults    bool // fault injection applies (default: not in reference groups)
	Sites     int
	Site      Value // site name template, default "{group}-{n:04}" ("{group}" for one site)
	Vars      []Var // per-site variables, e.g. zone
	Devices   []Member
}

// Var is a per-site variable, drawn once per site.
type Var struct {
	Name  string
	Value Value
}

// Member says how many devices of a type each site of a group has.
type Member struct {
	Type  string
	Count int     // devices of this type per site (default 1)
	Share float64 // fraction of sites that have them (default 1)
	ID    Value   // device id template, default "{site}-{type}" or "{site}-{type}-{i}"
}

// builtinVars are available in every template.
var builtinVars = []string{"site", "n", "i", "group", "type", "id"}

// Load reads and checks the fleet file at path.
func Load(path string) (*Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("devicesim: open fleet file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("devicesim: read fleet file %s: %w", path, err)
	}
	return Parse(path, b)
}

// Parse reads and checks a fleet file; name is used in error messages.
func Parse(name string, data []byte) (*Spec, error) {
	d := &decoder{file: name}
	if len(data) > maxFileBytes {
		return nil, d.errf(nil, "", "file of %d bytes exceeds the limit of %d", len(data), maxFileBytes)
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, d.errf(nil, "", "empty file; expected a mapping with types and groups")
		}
		return nil, d.errf(nil, "", "not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	spec := &Spec{File: name}
	root := resolve(&doc)
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = resolve(root.Content[0])
	}
	err := d.fields(root, "", []string{"name", "seed", "description", "types", "groups", "restore_profile"}, func(k string, v *yaml.Node, p string) error {
		var err error
		switch k {
		case "name":
			spec.Name, err = d.str(v, p)
		case "seed":
			var n float64
			if n, err = d.number(v, p); err == nil && (n < 0 || n != float64(uint64(n))) {
				err = d.errf(v, p, "expected a non-negative whole number, got %s", describe(v))
			}
			spec.Seed = uint64(n)
		case "description":
			_, err = d.str(v, p)
		case "types":
			err = d.list(v, p, func(_ int, tn *yaml.Node, tp string) error {
				t, err := d.deviceType(tn, tp)
				spec.Types = append(spec.Types, t)
				return err
			})
		case "restore_profile":
			spec.RestoreProfile, err = d.restoreProfile(v, p)
		case "groups":
			err = d.list(v, p, func(_ int, gn *yaml.Node, gp string) error {
				g, err := d.group(gn, gp)
				spec.Groups = append(spec.Groups, g)
				return err
			})
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := d.check(spec, root); err != nil {
		return nil, err
	}
	return spec, nil
}

func (d *decoder) deviceType(n *yaml.Node, path string) (*DeviceType, error) {
	t := &DeviceType{Transport: TransportMQTT}
	err := d.fields(n, path, []string{"name", "transport", "tag", "settings", "faults"}, func(k string, v *yaml.Node, p string) error {
		var err error
		switch k {
		case "name":
			if t.Name, err = d.str(v, p); err == nil && !validTypeName(t.Name) {
				err = d.errf(v, p, "expected a name of letters, digits, '.', '_' or '-', got %q", t.Name)
			}
		case "transport":
			if t.Transport, err = d.str(v, p); err == nil && t.Transport != TransportMQTT && t.Transport != TransportCoAP {
				err = d.errf(v, p, "expected mqtt or coap, got %q", t.Transport)
			}
		case "tag":
			err = d.pairs(v, p, func(key string, _, vn *yaml.Node, vp string) error {
				val, err := d.value(vn, vp)
				t.Tag = append(t.Tag, TagField{Key: key, Value: val})
				return err
			})
		case "settings":
			err = d.settings(t, v, p)
		case "faults":
			t.Faults, err = d.faults(v, p)
		}
		return err
	})
	if err == nil && t.Name == "" {
		err = d.errf(n, path+".name", "expected the type's name")
	}
	return t, err
}

func (d *decoder) settings(t *DeviceType, n *yaml.Node, path string) error {
	return d.fields(n, path, []string{"factory", "reference"}, func(k string, v *yaml.Node, p string) error {
		if k == "factory" {
			m, err := d.settingsMap(v, p)
			t.Factory = m
			return err
		}
		return d.list(v, p, func(_ int, on *yaml.Node, op string) error {
			o := Overlay{When: map[string]string{}}
			err := d.fields(on, op, []string{"when", "set"}, func(k string, v *yaml.Node, p string) error {
				if k == "set" {
					m, err := d.settingsMap(v, p)
					o.Set = m
					return err
				}
				return d.pairs(v, p, func(key string, _, wv *yaml.Node, wp string) error {
					s, err := d.str(wv, wp)
					o.When[key] = s
					return err
				})
			})
			if err == nil && o.Set == nil {
				err = d.errf(on, op+".set", "expected the settings to set")
			}
			t.Reference = append(t.Reference, o)
			return err
		})
	})
}

func (d *decoder) settingsMap(n *yaml.Node, path string) (map[string]gen, error) {
	m := map[string]gen{}
	err := d.pairs(n, path, func(k string, _, v *yaml.Node, p string) error {
		g, err := d.settingsGen(v, p, 1)
		m[k] = g
		return err
	})
	return m, err
}

func (d *decoder) faults(n *yaml.Node, path string) (Faults, error) {
	var f Faults
	keys := []string{"offline", "late", "latency", "slow", "drop", "reject", "corrupt", "reboot", "nocaps", "readonly", "wrongid"}
	err := d.fields(n, path, keys, func(k string, v *yaml.Node, p string) error {
		var err error
		switch k {
		case "offline":
			f.Offline, err = d.share(v, p)
		case "drop":
			f.Drop, err = d.share(v, p)
		case "reject":
			f.Reject, err = d.share(v, p)
		case "corrupt":
			f.Corrupt, err = d.share(v, p)
		case "nocaps":
			f.NoCaps, err = d.share(v, p)
		case "readonly":
			f.ReadOnly, err = d.share(v, p)
		case "wrongid":
			f.WrongID, err = d.share(v, p)
		case "latency":
			f.Latency, err = d.dist(v, p)
		case "late":
			err = d.fields(v, p, []string{"share", "after"}, func(k string, v *yaml.Node, p string) error {
				if k == "share" {
					f.Late.Share, err = d.share(v, p)
					return err
				}
				f.Late.After, err = d.dist(v, p)
				return err
			})
		case "slow":
			err = d.fields(v, p, []string{"share", "latency"}, func(k string, v *yaml.Node, p string) error {
				if k == "share" {
					f.Slow.Share, err = d.share(v, p)
					return err
				}
				f.Slow.Latency, err = d.dist(v, p)
				return err
			})
		case "reboot":
			f.Reboot.Applied = 0.5
			err = d.fields(v, p, []string{"share", "down", "applied"}, func(k string, v *yaml.Node, p string) error {
				switch k {
				case "share":
					f.Reboot.Share, err = d.share(v, p)
				case "down":
					f.Reboot.Down, err = d.dist(v, p)
				case "applied":
					f.Reboot.Applied, err = d.share(v, p)
				}
				return err
			})
		}
		return err
	})
	return f, err
}

func (d *decoder) group(n *yaml.Node, path string) (*Group, error) {
	g := &Group{Sites: 1}
	faultsSet := false
	keys := []string{"name", "reference", "faults", "sites", "site", "vars", "devices"}
	err := d.fields(n, path, keys, func(k string, v *yaml.Node, p string) error {
		var err error
		switch k {
		case "name":
			if g.Name, err = d.str(v, p); err == nil && !validTypeName(g.Name) {
				err = d.errf(v, p, "expected a name of letters, digits, '.', '_' or '-', got %q", g.Name)
			}
		case "reference":
			g.Reference, err = d.boolean(v, p)
		case "faults":
			g.Faults, err = d.boolean(v, p)
			faultsSet = true
		case "sites":
			g.Sites, err = d.count(v, p, 1, MaxDevices)
		case "site":
			g.Site, err = d.value(v, p)
		case "vars":
			err = d.pairs(v, p, func(name string, kn, vn *yaml.Node, vp string) error {
				if !validTypeName(name) || contains(builtinVars, name) {
					return d.errf(kn, vp, "expected a variable name of letters, digits, _ or - that is not built in (%s)", strings.Join(builtinVars, ", "))
				}
				val, err := d.value(vn, vp)
				g.Vars = append(g.Vars, Var{Name: name, Value: val})
				return err
			})
		case "devices":
			err = d.list(v, p, func(_ int, mn *yaml.Node, mp string) error {
				m, err := d.member(mn, mp)
				g.Devices = append(g.Devices, m)
				return err
			})
		}
		return err
	})
	if !faultsSet {
		g.Faults = !g.Reference
	}
	if err == nil && g.Name == "" {
		err = d.errf(n, path+".name", "expected the group's name")
	}
	if err == nil && len(g.Devices) == 0 {
		err = d.errf(n, path+".devices", "expected a list of {type, count}")
	}
	return g, err
}

func (d *decoder) member(n *yaml.Node, path string) (Member, error) {
	m := Member{Count: 1, Share: 1}
	err := d.fields(n, path, []string{"type", "count", "share", "id"}, func(k string, v *yaml.Node, p string) error {
		var err error
		switch k {
		case "type":
			m.Type, err = d.str(v, p)
		case "count":
			m.Count, err = d.count(v, p, 0, MaxDevices)
		case "share":
			m.Share, err = d.share(v, p)
		case "id":
			m.ID, err = d.value(v, p)
		}
		return err
	})
	if err == nil && m.Type == "" {
		err = d.errf(n, path+".type", "expected the device type's name")
	}
	return m, err
}

// validTypeName accepts a device type or group name: letters, digits, '.', '_' and
// '-' (at most 128), safe in the device ids built from it, which are checked
// whole by agent.CheckDeviceID.
func validTypeName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r == '.' || r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
