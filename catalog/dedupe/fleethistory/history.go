package fleethistory

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// Config describes a fleet history. Zero fields take the defaults noted.
type Config struct {
	Devices  int       // devices in the fleet (required, > 0)
	Days     int       // daily backups (required, > 0)
	Change   float64   // share of devices that change a few settings each day, 0-1 (e.g. 0.01)
	Custom   float64   // share of devices edited locally before day 0; 0 means 0.1, negative means none
	Profiles int       // profiles (regions) per device type; 0 means 4
	Seed     uint64    // 0 means 1
	Start    time.Time // day 0's backup time; zero means 2026-01-01T02:00:00Z
}

// Record is one device's backup on one day.
type Record struct {
	Day      int
	Device   string // "dev-00042"
	Type     string // the device type, e.g. "thermostat"
	Time     time.Time
	Tag      tagmatch.Tag
	Settings []byte // deterministic CBOR; shared, do not modify
}

// History generates a fleet's daily backups, in order.
type History struct {
	cfg      Config
	profiles [][]profile // by type, then profile
	devices  []device
	next     int // the next day Day may generate
}

type profile struct {
	settings map[string]any
	doc      []byte
}

type device struct {
	typ, profile int
	settings     map[string]any // nil while equal to the profile's
	doc          []byte
	tag          tagmatch.Tag
}

// New builds the fleet as it stands on day 0.
func New(cfg Config) (*History, error) {
	switch {
	case cfg.Devices <= 0:
		return nil, fmt.Errorf("fleethistory: devices must be positive, have %d", cfg.Devices)
	case cfg.Days <= 0:
		return nil, fmt.Errorf("fleethistory: days must be positive, have %d", cfg.Days)
	case cfg.Change < 0 || cfg.Change > 1 || math.IsNaN(cfg.Change):
		return nil, fmt.Errorf("fleethistory: change must be a share between 0 and 1, have %v", cfg.Change)
	case cfg.Custom > 1 || math.IsNaN(cfg.Custom):
		return nil, fmt.Errorf("fleethistory: custom must be a share between 0 and 1, have %v", cfg.Custom)
	}
	if cfg.Custom == 0 {
		cfg.Custom = 0.1
	}
	if cfg.Profiles <= 0 {
		cfg.Profiles = 4
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC)
	}
	h := &History{cfg: cfg}
	if err := h.buildProfiles(); err != nil {
		return nil, err
	}
	if err := h.buildDevices(); err != nil {
		return nil, err
	}
	return h, nil
}

// Days returns the number of days in the history.
func (h *History) Days() int { return h.cfg.Days }

// Devices returns the number of devices.
func (h *History) Devices() int { return h.cfg.Devices }

func (h *History) buildProfiles() error {
	h.profiles = make([][]profile, len(types))
	for t, ty := range types {
		for p := range h.cfg.Profiles {
			r := rand.New(rand.NewPCG(h.cfg.Seed, uint64(t*1000+p)))
			s := ty.build(r, regions[p%len(regions)])
			s["device_type"] = ty.product
			doc, err := agent.EncodeSettings(s)
			if err != nil {
				return fmt.Errorf("fleethistory: profile %d of %s: %w", p, ty.product, err)
			}
			h.profiles[t] = append(h.profiles[t], profile{settings: s, doc: doc})
		}
	}
	return nil
}

func (h *History) buildDevices() error {
	var total int
	for _, ty := range types {
		total += ty.weight
	}
	r := rand.New(rand.NewPCG(h.cfg.Seed, 1<<40))
	h.devices = make([]device, h.cfg.Devices)
	for i := range h.devices {
		d := &h.devices[i]
		w := r.IntN(total)
		for d.typ = 0; w >= types[d.typ].weight; d.typ++ {
			w -= types[d.typ].weight
		}
		d.profile = r.IntN(h.cfg.Profiles)
		ty := types[d.typ]
		d.tag = tagmatch.Tag{
			{Key: tagmatch.KeyManufacturer, Value: ty.manufacturer},
			{Key: tagmatch.KeyProduct, Value: ty.product},
			{Key: tagmatch.KeyModel, Value: ty.model},
			{Key: tagmatch.KeyFirmware, Value: fmt.Sprintf("2.%d.%d", d.profile, i%3)},
			{Key: tagmatch.KeyZone, Value: regions[d.profile%len(regions)]},
		}
		d.doc = h.profiles[d.typ][d.profile].doc
		if r.Float64() < h.cfg.Custom {
			if err := h.change(d, r); err != nil {
				return fmt.Errorf("fleethistory: device %d: %w", i, err)
			}
		}
	}
	return nil
}

// Day generates day d's records, one per device in device order, calling fn
// for each. Days must be generated in order, from 0.
func (h *History) Day(d int, fn func(Record) error) error {
	if d != h.next || d >= h.cfg.Days {
		return fmt.Errorf("fleethistory: day %d requested, but the next day is %d of %d", d, h.next, h.cfg.Days)
	}
	h.next++
	if d > 0 {
		r := rand.New(rand.NewPCG(h.cfg.Seed, uint64(d)))
		n := int(math.Round(h.cfg.Change * float64(len(h.devices))))
		for _, i := range r.Perm(len(h.devices))[:n] {
			if err := h.change(&h.devices[i], r); err != nil {
				return fmt.Errorf("fleethistory: day %d: device %d: %w", d, i, err)
			}
		}
	}
	// The nightly run backs devices up one after another over an hour, so
	// records arrive in time order, as at a real backup server.
	day := h.cfg.Start.Add(time.Duration(d) * 24 * time.Hour)
	step := time.Hour / time.Duration(len(h.devices))
	for i := range h.devices {
		dev := &h.devices[i]
		err := fn(Record{
			Day: d, Device: deviceName(i), Type: types[dev.typ].product,
			Time: day.Add(time.Duration(i) * step), Tag: dev.tag, Settings: dev.doc,
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func deviceName(i int) string { return fmt.Sprintf("dev-%05d", i) }

// change applies one to three edits to a device's settings and re-encodes them.
func (h *History) change(d *device, r *rand.Rand) error {
	if d.settings == nil {
		d.settings = deepCopy(h.profiles[d.typ][d.profile].settings).(map[string]any)
	}
	var ls []leaf
	collect(d.settings, &ls)
	for range 1 + r.IntN(3) {
		l := ls[r.IntN(len(ls))]
		l.set(mutate(l.get(), r))
	}
	doc, err := agent.EncodeSettings(d.settings)
	if err != nil {
		return err
	}
	d.doc = doc
	return nil
}

// leaf is a scalar in a settings document, with access to its slot.
type leaf struct {
	get func() any
	set func(any)
}

// collect lists the leaves of v in a fixed order (map keys sorted).
func collect(v any, out *[]leaf) {
	switch c := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(c))
		for k := range c {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if isScalar(c[k]) {
				*out = append(*out, leaf{func() any { return c[k] }, func(x any) { c[k] = x }})
			} else {
				collect(c[k], out)
			}
		}
	case []any:
		for i := range c {
			if isScalar(c[i]) {
				*out = append(*out, leaf{func() any { return c[i] }, func(x any) { c[i] = x }})
			} else {
				collect(c[i], out)
			}
		}
	}
}

func isScalar(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return false
	}
	return true
}

// mutate returns a plausible edit of a setting: a setpoint nudged, a flag
// flipped, a time moved, a name changed.
func mutate(v any, r *rand.Rand) any {
	switch x := v.(type) {
	case float64:
		return x + float64(1+r.IntN(3))/2
	case uint64:
		return x + uint64(1+r.IntN(5))
	case int64:
		return x + int64(1+r.IntN(5))
	case bool:
		return !x
	case string:
		if len(x) == 5 && x[2] == ':' {
			return fmt.Sprintf("%02d:%02d", (int(x[0]-'0')*10+int(x[1]-'0')+1)%24, 15*r.IntN(4))
		}
		return fmt.Sprintf("%s %d", x, 2+r.IntN(8))
	}
	return v
}

func deepCopy(v any) any {
	switch c := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(c))
		for k, x := range c {
			m[k] = deepCopy(x)
		}
		return m
	case []any:
		s := make([]any, len(c))
		for i, x := range c {
			s[i] = deepCopy(x)
		}
		return s
	}
	return v
}

// WriteFiles writes the whole history under dir: one directory per day
// (day-000, day-001, ...) holding one file per device (dev-00042.cbor).
// It returns the number of files and bytes written.
func (h *History) WriteFiles(dir string) (files, bytes int64, err error) {
	for d := range h.cfg.Days {
		dayDir := DayDir(dir, d)
		if err := os.MkdirAll(dayDir, 0o755); err != nil {
			return files, bytes, fmt.Errorf("fleethistory: %w", err)
		}
		err := h.Day(d, func(r Record) error {
			files++
			bytes += int64(len(r.Settings))
			return os.WriteFile(filepath.Join(dayDir, r.Device+".cbor"), r.Settings, 0o644)
		})
		if err != nil {
			return files, bytes, fmt.Errorf("fleethistory: write day %d: %w", d, err)
		}
	}
	return files, bytes, nil
}

// DayDir is the directory WriteFiles uses for day d.
func DayDir(dir string, d int) string { return filepath.Join(dir, fmt.Sprintf("day-%03d", d)) }
