package devicesim

import (
	"gopkg.in/yaml.v3"

	"github.com/fleetvault/fleetvault/settingsdoc"
)

// restoreProfile reads a fleet file's restore_profile: the restore profile
// (docs/spec/profiles.md) its restores use, e.g.
//
//	restore_profile: {name: keep-identity, keep: [/name, "/network/*"], set: ["/label={{.Device.ID}}"]}
func (d *decoder) restoreProfile(n *yaml.Node, path string) (*settingsdoc.Profile, error) {
	p := &settingsdoc.Profile{}
	strs := func(v *yaml.Node, vp string, dst *[]string) error {
		return d.list(v, vp, func(_ int, s *yaml.Node, sp string) error {
			t, err := d.str(s, sp)
			*dst = append(*dst, t)
			return err
		})
	}
	err := d.fields(n, path, []string{"name", "keep", "set", "only"}, func(k string, v *yaml.Node, vp string) error {
		var err error
		switch k {
		case "name":
			p.Name, err = d.str(v, vp)
		case "keep":
			err = strs(v, vp, &p.Keep)
		case "only":
			err = strs(v, vp, &p.Only)
		case "set":
			var sets []string
			if err = strs(v, vp, &sets); err != nil {
				return err
			}
			for _, s := range sets {
				a, err := settingsdoc.ParseAssign(s)
				if err != nil {
					return d.errf(v, vp, "%v", err)
				}
				p.Set = append(p.Set, a)
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if _, err := p.Compile(); err != nil {
		return nil, d.errf(n, path, "%v", err)
	}
	return p, nil
}
