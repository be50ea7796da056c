package devicesim

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/identifiers"
	"github.com/fleetvault/fleetvault/tagmatch"
	"gopkg.in/yaml.v3"
)

// Streams of the seeded generator: tags and settings, faults and secrets draw
// from separate streams, so adding a fault does not change anyone's tag.
const (
	streamDevices = 1
	streamFaults  = 2
	streamRuntime = 3
)

// check resolves the cross references of a parsed spec.
func (d *decoder) check(s *Spec, root *yaml.Node) error {
	if len(s.Types) == 0 {
		return d.errf(root, "types", "expected at least one device type")
	}
	if len(s.Groups) == 0 {
		return d.errf(root, "groups", "expected at least one group")
	}
	types := map[string]*DeviceType{}
	for i, t := range s.Types {
		if types[t.Name] != nil {
			return d.errf(nil, fmt.Sprintf("types[%d].name", i), "type %q is defined twice", t.Name)
		}
		types[t.Name] = t
	}
	groups := map[string]bool{}
	total := 0
	for gi, g := range s.Groups {
		gp := fmt.Sprintf("groups[%d]", gi)
		if groups[g.Name] {
			return d.errf(nil, gp+".name", "group %q is defined twice", g.Name)
		}
		groups[g.Name] = true
		known := map[string]bool{"n": true, "group": true}
		for vi, v := range g.Vars {
			if err := d.known(v.Value.names(), known, fmt.Sprintf("%s.vars.%s", gp, v.Name)); err != nil {
				_ = vi
				return err
			}
			known[v.Name] = true
		}
		if err := d.known(g.Site.names(), known, gp+".site"); err != nil {
			return err
		}
		known["site"] = true
		for mi, m := range g.Devices {
			mp := fmt.Sprintf("%s.devices[%d]", gp, mi)
			t := types[m.Type]
			if t == nil {
				return d.errf(nil, mp+".type", "unknown device type %q; the types are %s", m.Type, typeNames(s.Types))
			}
			total += int(math.Ceil(float64(g.Sites)*m.Share)) * m.Count
			if total > MaxDevices {
				return d.errf(nil, mp, "the fleet would have more than %d devices", MaxDevices)
			}
			mk := copyKnown(known, "type", "i")
			if err := d.known(m.ID.names(), mk, mp+".id"); err != nil {
				return err
			}
			mk["id"] = true
			if err := d.checkType(s, t, mk, mp); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkType checks that a type's templates use only variables group member mp defines.
func (d *decoder) checkType(s *Spec, t *DeviceType, known map[string]bool, mp string) error {
	tp := "types[" + strconv.Itoa(typeIndex(s, t)) + "]"
	for _, f := range t.Tag {
		if err := d.known(f.Value.names(), known, tp+".tag."+f.Key, "(used by "+mp+")"); err != nil {
			return err
		}
	}
	sk := copyKnown(known)
	for _, f := range t.Tag {
		sk[f.Key] = true
	}
	for k, g := range t.Factory {
		if err := d.known(g.names(), sk, tp+".settings.factory."+k, "(used by "+mp+")"); err != nil {
			return err
		}
	}
	for i, o := range t.Reference {
		for k, g := range o.Set {
			if err := d.known(g.names(), sk, fmt.Sprintf("%s.settings.reference[%d].set.%s", tp, i, k), "(used by "+mp+")"); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *decoder) known(names []string, known map[string]bool, path string, extra ...string) error {
	for _, n := range names {
		if !known[n] {
			msg := fmt.Sprintf("unknown variable {%s}; known here: %v", n, sortedKeys(known))
			if len(extra) > 0 {
				msg += " " + extra[0]
			}
			return d.errf(nil, path, "%s", msg)
		}
	}
	return nil
}

func copyKnown(m map[string]bool, add ...string) map[string]bool {
	out := make(map[string]bool, len(m)+len(add))
	for k := range m {
		out[k] = true
	}
	for _, k := range add {
		out[k] = true
	}
	return out
}

func typeIndex(s *Spec, t *DeviceType) int {
	for i, x := range s.Types {
		if x == t {
			return i
		}
	}
	return -1
}

func typeNames(ts []*DeviceType) string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Name)
	}
	return fmt.Sprint(out)
}

// DeviceInfo describes one simulated device: what a server needs to provision
// it (resource DB, broker credentials) and what a test expects of it.
type DeviceInfo struct {
	ID        string
	Type      string
	Group     string
	Site      string
	Transport string // TransportMQTT or TransportCoAP
	// Identifier is the device's base address (no method): mqtt://<id>, or
	// coap://127.0.0.1:<port> once the fleet has started (port 0 before).
	Identifier identifiers.ID
	Password   string // the device's secret (MQTT password)
	CoAPKey    []byte // a coaps:// device's DTLS pre-shared key; nil otherwise
	Tag        tagmatch.Tag
	Reference  bool // holds the reference settings of a model house
	Faults     DeviceFaults
}

// BaseAddress formats a device's base identifier (scheme, address and port,
// no method): mqtt://home0001-climate or coap://127.0.0.1:40001.
func BaseAddress(id identifiers.ID) string {
	host := id.Address
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if id.Port != 0 {
		host += ":" + strconv.Itoa(id.Port)
	}
	if id.Scheme == "" {
		return host
	}
	return id.Scheme + "://" + host
}

// DeviceFaults are the faults one device was given.
type DeviceFaults struct {
	Offline   bool          // never comes online
	LateAfter time.Duration // > 0: comes online this long after the fleet starts
	Slow      bool          // answers after the type's slow latency
	Drop      bool          // ignores requests
	Reject    bool          // refuses settings
	Corrupt   bool          // stores a corrupted copy of what it is sent
	Reboot    bool          // reboots on its first write
	NoCaps    bool          // announces no capabilities
	ReadOnly  bool          // announces read-tag and read-settings only
	WrongID   bool          // answers as "<id>-impostor"
}

// planned is a device before it runs.
type planned struct {
	info     DeviceInfo
	typ      *DeviceType
	settings agent.Settings
}

// plan expands the spec into devices, deterministically for a seed.
func (s *Spec) plan(seed uint64, secret func(string) string) ([]*planned, error) {
	r := rand.New(rand.NewPCG(seed, streamDevices))
	var out []*planned
	seen := map[string]string{}
	byType := map[*DeviceType][]*planned{}
	types := map[string]*DeviceType{}
	for _, t := range s.Types {
		types[t.Name] = t
	}
	for gi, g := range s.Groups {
		for n := 1; n <= g.Sites; n++ {
			vars := map[string]string{"group": g.Name, "n": strconv.Itoa(n)}
			for _, v := range g.Vars {
				vars[v.Name] = v.Value.pick(r, vars)
			}
			vars["site"] = g.siteName(r, vars)
			for mi, m := range g.Devices {
				if m.Share < 1 && r.Float64() >= m.Share {
					continue
				}
				for i := 1; i <= m.Count; i++ {
					p, err := s.planDevice(r, g, m, types[m.Type], vars, i)
					if err != nil {
						return nil, err
					}
					where := fmt.Sprintf("groups[%d].devices[%d]", gi, mi)
					if prev, dup := seen[p.info.ID]; dup {
						return nil, &SpecError{File: s.File, Path: where, Msg: fmt.Sprintf("device id %q is made twice (also by %s); give the member an id template", p.info.ID, prev)}
					}
					seen[p.info.ID] = where
					p.info.Password = secret(p.info.ID)
					out = append(out, p)
					if g.Faults {
						byType[p.typ] = append(byType[p.typ], p)
					}
				}
			}
		}
	}
	fr := rand.New(rand.NewPCG(seed, streamFaults))
	for _, t := range s.Types { // in file order, for determinism
		assignFaults(fr, t, byType[t])
	}
	return out, nil
}

func (g *Group) siteName(r *rand.Rand, vars map[string]string) string {
	if len(g.Site.Choices) > 0 {
		return g.Site.pick(r, vars)
	}
	if g.Sites == 1 {
		return g.Name
	}
	return fmt.Sprintf("%s-%04s", g.Name, vars["n"])
}

func (s *Spec) planDevice(r *rand.Rand, g *Group, m Member, t *DeviceType, site map[string]string, i int) (*planned, error) {
	vars := make(map[string]string, len(site)+8)
	for k, v := range site {
		vars[k] = v
	}
	vars["type"], vars["i"] = t.Name, strconv.Itoa(i)
	switch {
	case len(m.ID.Choices) > 0:
		vars["id"] = m.ID.pick(r, vars)
	case m.Count == 1:
		vars["id"] = vars["site"] + "-" + t.Name
	default:
		vars["id"] = fmt.Sprintf("%s-%s-%d", vars["site"], t.Name, i)
	}
	id := vars["id"]
	if err := agent.CheckDeviceID(id); err != nil {
		return nil, &SpecError{File: s.File, Path: "groups." + g.Name, Msg: strings.TrimPrefix(err.Error(), "agent: ")}
	}
	p := &planned{typ: t, info: DeviceInfo{
		ID: id, Type: t.Name, Group: g.Name, Site: vars["site"], Transport: t.Transport,
		Reference:  g.Reference,
		Identifier: identifiers.ID{Scheme: t.Transport, Address: id},
	}}
	if t.Transport == TransportCoAP {
		p.info.Identifier.Address = "127.0.0.1"
	}
	for _, f := range t.Tag {
		p.info.Tag = append(p.info.Tag, tagmatch.Attr{Key: f.Key, Value: f.Value.pick(r, vars)})
	}
	for _, a := range p.info.Tag {
		if _, builtin := vars[a.Key]; !builtin {
			vars[a.Key] = a.Value
		}
	}
	p.settings = genSettings(r, t.Factory, vars)
	if g.Reference {
		for _, o := range t.Reference {
			if o.matches(p.info.Tag) {
				mergeSettings(p.settings, genSettings(r, o.Set, vars))
			}
		}
	}
	return p, nil
}

func genSettings(r *rand.Rand, m map[string]gen, vars map[string]string) agent.Settings {
	out := make(agent.Settings, len(m))
	for _, k := range sortedGenKeys(m) { // map order is random; the draws must not be
		out[k] = m[k].gen(r, vars)
	}
	return out
}

func sortedGenKeys(m map[string]gen) []string {
	keys := make(map[string]bool, len(m))
	for k := range m {
		keys[k] = true
	}
	return sortedKeys(keys)
}

func (o Overlay) matches(tag tagmatch.Tag) bool {
	for k, v := range o.When {
		if got, ok := tag.Get(k); !ok || got != v {
			return false
		}
	}
	return true
}

// assignFaults gives exactly round(share*len(devs)) devices each fault.
func assignFaults(r *rand.Rand, t *DeviceType, devs []*planned) {
	if len(devs) == 0 {
		return
	}
	f := t.Faults
	pick := func(share float64, set func(p *planned)) {
		k := int(math.Round(share * float64(len(devs))))
		if k == 0 {
			return
		}
		perm := r.Perm(len(devs))
		for _, i := range perm[:k] {
			set(devs[i])
		}
	}
	pick(f.Offline, func(p *planned) { p.info.Faults.Offline = true })
	pick(f.Late.Share, func(p *planned) {
		if d := f.Late.After.Sample(r); !p.info.Faults.Offline {
			p.info.Faults.LateAfter = max(d, time.Millisecond)
		}
	})
	pick(f.Slow.Share, func(p *planned) { p.info.Faults.Slow = true })
	pick(f.Drop, func(p *planned) { p.info.Faults.Drop = true })
	pick(f.Reject, func(p *planned) { p.info.Faults.Reject = true })
	pick(f.Corrupt, func(p *planned) { p.info.Faults.Corrupt = true })
	pick(f.Reboot.Share, func(p *planned) { p.info.Faults.Reboot = true })
	pick(f.NoCaps, func(p *planned) { p.info.Faults.NoCaps = true })
	pick(f.ReadOnly, func(p *planned) { p.info.Faults.ReadOnly = true })
	pick(f.WrongID, func(p *planned) { p.info.Faults.WrongID = true })
}

// DefaultCoAPKey derives a CoAP device's 16-byte DTLS pre-shared key from
// the seed and its id: the first 16 bytes of SHA-256 of the seed (8 bytes,
// big-endian), "fleetvault coaps psk" and the id
// (docs/spec/vectors/coap-security.json). Like DefaultSecret it is a
// simulator's convenience: anyone who knows the seed knows the keys. The
// server never derives keys; it reads those it was given.
func DefaultCoAPKey(seed uint64) func(id string) []byte {
	return func(id string) []byte {
		h := sha256.New()
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], seed)
		h.Write(b[:])
		h.Write([]byte("fleetvault coaps psk"))
		h.Write([]byte(id))
		return h.Sum(nil)[:16]
	}
}

// DefaultSecret derives a device's secret from the seed and its id, so a
// fleet is reproducible in CI. It is a simulator's convenience, not a way to
// make real secrets: anyone who knows the seed knows the secrets.
func DefaultSecret(seed uint64) func(id string) string {
	return func(id string) string {
		h := sha256.New()
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], seed)
		h.Write(b[:])
		h.Write([]byte(id))
		return hex.EncodeToString(h.Sum(nil)[:12])
	}
}
