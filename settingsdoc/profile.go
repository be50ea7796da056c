package settingsdoc

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// Profile says which parts of a settings document a restore writes. It is
// kept by name in the resource database and frozen into each job that uses it.
type Profile struct {
	Name string   `cbor:"name" json:"name"`
	Keep []string `cbor:"keep,omitempty" json:"keep,omitempty"` // pointers whose values stay as the device has them
	Set  []Assign `cbor:"set,omitempty" json:"set,omitempty"`   // pointers given a templated value per device
	Only []string `cbor:"only,omitempty" json:"only,omitempty"` // when given, the only sections taken from the backup
}

// Assign is one set entry: a pointer and the template of its text value.
type Assign struct {
	Pointer  string `cbor:"ptr" json:"pointer"`
	Template string `cbor:"tmpl" json:"template"`
}

// ParseAssign reads the command line's PTR=TEMPLATE.
func ParseAssign(s string) (Assign, error) {
	ptr, tmpl, ok := strings.Cut(s, "=")
	if !ok {
		return Assign{}, fmt.Errorf("%w: set %q: write POINTER=TEMPLATE, e.g. /name={{.Device.ID}}", ErrProfile, s)
	}
	return Assign{Pointer: strings.TrimSpace(ptr), Template: strings.TrimSpace(tmpl)}, nil
}

// String is the command line's PTR=TEMPLATE.
func (a Assign) String() string { return a.Pointer + "=" + a.Template }

// Data is what a set template sees: {{.Device.ID}}, {{.Device.Group}},
// {{.Tag.zone}}, {{.Backup.Client}}.
type Data struct {
	Device DeviceData
	// Tag is the device's tag by normalised key (well-known keys spelled as
	// tagmatch spells them: zone, model, ...).
	Tag    map[string]string
	Backup BackupData
}

// DeviceData is the target device.
type DeviceData struct {
	ID    string
	Group string // the device group restored to
}

// BackupData is the piece restored.
type BackupData struct {
	Client string // the device it was backed up from
	Piece  string
}

// TagData turns a device tag into Data.Tag, keys normalised.
func TagData(t tagmatch.Tag) map[string]string {
	out := make(map[string]string, len(t))
	for _, a := range t {
		out[tagmatch.NormalizeKey(a.Key)] = a.Value
	}
	return out
}

// MaxEntries bounds each list of a profile.
const MaxEntries = 64

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidName checks a profile name: 1-64 letters, digits, '.', '_' or '-',
// starting with a letter or digit.
func ValidName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: name %q: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", ErrProfile, name)
	}
	return nil
}

// Compiled is a checked profile, ready to apply.
type Compiled struct {
	p    Profile
	keep []Pointer
	only []Pointer
	set  []compiledSet
}

type compiledSet struct {
	ptr  Pointer
	tmpl *template.Template
}

// Compile checks every entry of p, naming the first one at fault.
func (p Profile) Compile() (*Compiled, error) {
	if err := ValidName(p.Name); err != nil {
		return nil, err
	}
	if len(p.Keep)+len(p.Set)+len(p.Only) == 0 {
		return nil, fmt.Errorf("%w %s: it has no keep, set or only entry", ErrProfile, p.Name)
	}
	c := &Compiled{p: p}
	for _, l := range []struct {
		what string
		in   []string
		out  *[]Pointer
	}{{"keep", p.Keep, &c.keep}, {"only", p.Only, &c.only}} {
		if len(l.in) > MaxEntries {
			return nil, fmt.Errorf("%w %s: %d %s entries, more than %d", ErrProfile, p.Name, len(l.in), l.what, MaxEntries)
		}
		for _, s := range l.in {
			ptr, err := ParsePointer(s)
			if err != nil {
				return nil, fmt.Errorf("%w %s: %s: %w", ErrProfile, p.Name, l.what, err)
			}
			*l.out = append(*l.out, ptr)
		}
	}
	if len(p.Set) > MaxEntries {
		return nil, fmt.Errorf("%w %s: %d set entries, more than %d", ErrProfile, p.Name, len(p.Set), MaxEntries)
	}
	for _, a := range p.Set {
		ptr, err := ParsePointer(a.Pointer)
		if err != nil {
			return nil, fmt.Errorf("%w %s: set: %w", ErrProfile, p.Name, err)
		}
		t, err := template.New(a.Pointer).Option("missingkey=error").Parse(a.Template)
		if err != nil {
			return nil, fmt.Errorf("%w %s: set %s: template: %v", ErrProfile, p.Name, a.Pointer, err)
		}
		c.set = append(c.set, compiledSet{ptr: ptr, tmpl: t})
	}
	return c, nil
}

// Profile returns the profile c was compiled from.
func (c *Compiled) Profile() Profile { return c.p }

// Apply computes the document a restore writes to one device: backup is the
// backed-up settings, current the device's own (both encoded settings). The
// steps, in order: start from the backup (with only: from current, each only
// pointer taken from the backup, present or absent); each kept pointer is put
// back as current has it, present or absent; each set pointer gets its
// template's text. The result is deterministically encoded.
func (c *Compiled) Apply(backup, current []byte, data Data) ([]byte, error) {
	b, err := agent.DecodeSettings(backup)
	if err != nil {
		return nil, fmt.Errorf("%w: the backup: %w", ErrApply, err)
	}
	cur, err := agent.DecodeSettings(current)
	if err != nil {
		return nil, fmt.Errorf("%w: the device's current settings: %w", ErrApply, err)
	}
	doc := b
	if len(c.only) > 0 {
		doc = clone(cur).(map[string]any)
		if err := take(doc, b, c.only); err != nil {
			return nil, err
		}
	}
	if err := take(doc, cur, c.keep); err != nil {
		return nil, err
	}
	for _, s := range c.set {
		var sb strings.Builder
		if err := s.tmpl.Execute(&sb, data); err != nil {
			return nil, fmt.Errorf("%w: set %s: %v", ErrApply, s.ptr, err)
		}
		for _, p := range expand(doc, s.ptr) {
			if err := set(doc, p, sb.String()); err != nil {
				return nil, err
			}
		}
	}
	out, err := agent.EncodeSettings(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrApply, err)
	}
	return out, nil
}

// take makes every pointer of ptrs in doc hold what from holds there:
// from's value, or nothing when from has none.
func take(doc, from map[string]any, ptrs []Pointer) error {
	for _, ptr := range ptrs {
		for _, p := range union(expand(doc, ptr), expand(from, ptr)) {
			var err error
			if v, ok := get(from, p); ok {
				err = set(doc, p, clone(v))
			} else {
				err = remove(doc, p)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// Lines renders a profile as the command line writes it, one entry a line.
func (p Profile) Lines() []string {
	var out []string
	for _, k := range p.Keep {
		out = append(out, "keep "+k)
	}
	for _, a := range p.Set {
		out = append(out, "set  "+a.String())
	}
	for _, o := range p.Only {
		out = append(out, "only "+o)
	}
	return out
}

// SortProfiles orders profiles by name.
func SortProfiles(ps []Profile) {
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
}
