package devicesim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// template is text with {name} or {name:04} placeholders ({{ and }} are
// literal braces). Names are the built-in variables (site, n, i, group, type,
// id), the group's vars and, in settings, the device's tag keys.
type template struct {
	src   string
	parts []tmplPart
}

type tmplPart struct {
	lit   string
	name  string // empty for a literal
	width int    // zero-padding for numbers, from {n:04}
}

func parseTemplate(s string) (template, error) {
	t := template{src: s}
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{' && i+1 < len(s) && s[i+1] == '{', c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte(c)
			i++
		case c == '}':
			return t, fmt.Errorf("unmatched } at offset %d in %q (write }} for a literal brace)", i, s)
		case c == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return t, fmt.Errorf("unclosed { at offset %d in %q", i, s)
			}
			p, err := parsePlaceholder(s[i+1 : i+end])
			if err != nil {
				return t, fmt.Errorf("%v in %q", err, s)
			}
			if lit.Len() > 0 {
				t.parts = append(t.parts, tmplPart{lit: lit.String()})
				lit.Reset()
			}
			t.parts = append(t.parts, p)
			i += end
		default:
			lit.WriteByte(c)
		}
	}
	if lit.Len() > 0 {
		t.parts = append(t.parts, tmplPart{lit: lit.String()})
	}
	return t, nil
}

func parsePlaceholder(body string) (tmplPart, error) {
	name, format, hasFormat := strings.Cut(body, ":")
	if !validName(name) {
		return tmplPart{}, fmt.Errorf("placeholder {%s}: expected a variable name of letters, digits, _ or -", body)
	}
	p := tmplPart{name: name}
	if hasFormat {
		w, err := strconv.Atoi(format)
		if err != nil || w < 1 || w > 12 || format[0] != '0' {
			return p, fmt.Errorf("placeholder {%s}: expected a zero-padding width such as :04", body)
		}
		p.width = w
	}
	return p, nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// names lists the variables a template uses.
func (t template) names() []string {
	var out []string
	for _, p := range t.parts {
		if p.name != "" {
			out = append(out, p.name)
		}
	}
	return out
}

// render fills the placeholders; every name must have been checked at parse time.
func (t template) render(vars map[string]string) string {
	if len(t.parts) == 1 && t.parts[0].name == "" {
		return t.parts[0].lit
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.name == "" {
			b.WriteString(p.lit)
			continue
		}
		v := vars[p.name]
		if p.width > 0 {
			if n, err := strconv.Atoi(v); err == nil {
				v = fmt.Sprintf("%0*d", p.width, n)
			}
		}
		b.WriteString(v)
	}
	return b.String()
}

// Value is a text value of a tag attribute or a site variable: one template,
// or a weighted choice among templates (e.g. zone: {choice: {North: 3, South: 1}}).
type Value struct {
	Choices []Choice
}

// Choice is one alternative of a Value with its relative weight.
type Choice struct {
	Text   string
	Weight float64
	tmpl   template
}

func (v Value) names() []string {
	var out []string
	for _, c := range v.Choices {
		out = append(out, c.tmpl.names()...)
	}
	return out
}

// pick chooses an alternative: deterministic for a given random source.
func (v Value) pick(r *rand.Rand, vars map[string]string) string {
	if len(v.Choices) == 1 {
		return v.Choices[0].tmpl.render(vars)
	}
	var total float64
	for _, c := range v.Choices {
		total += c.Weight
	}
	x := r.Float64() * total
	for _, c := range v.Choices {
		if x < c.Weight {
			return c.tmpl.render(vars)
		}
		x -= c.Weight
	}
	return v.Choices[len(v.Choices)-1].tmpl.render(vars)
}

// value reads "text", or {choice: [a, b]} (equal weights), or {choice: {a: 3, b: 1}}.
func (d *decoder) value(n *yaml.Node, path string) (Value, error) {
	if n.Kind == yaml.ScalarNode {
		c, err := d.choice(n, path, n.Value, 1)
		return Value{Choices: []Choice{c}}, err
	}
	var v Value
	err := d.fields(n, path, []string{"choice"}, func(_ string, cn *yaml.Node, p string) error {
		switch cn.Kind {
		case yaml.SequenceNode:
			return d.list(cn, p, func(_ int, e *yaml.Node, ep string) error {
				s, err := d.str(e, ep)
				if err != nil {
					return err
				}
				c, err := d.choice(e, ep, s, 1)
				v.Choices = append(v.Choices, c)
				return err
			})
		case yaml.MappingNode:
			return d.pairs(cn, p, func(k string, _, wn *yaml.Node, wp string) error {
				w, err := d.number(wn, wp)
				if err != nil || w <= 0 {
					return d.errf(wn, wp, "expected a positive weight, got %s", describe(wn))
				}
				c, err := d.choice(wn, wp, k, w)
				v.Choices = append(v.Choices, c)
				return err
			})
		}
		return d.errf(cn, p, "expected a list of alternatives or a mapping of alternative: weight, got %s", describe(cn))
	})
	if err == nil && len(v.Choices) == 0 {
		return v, d.errf(n, path, "expected at least one alternative")
	}
	return v, err
}

func (d *decoder) choice(n *yaml.Node, path, text string, w float64) (Choice, error) {
	t, err := parseTemplate(text)
	if err != nil {
		return Choice{}, d.errf(n, path, "%v", err)
	}
	return Choice{Text: text, Weight: w, tmpl: t}, nil
}

// Dist is a distribution of durations: a fixed value, uniform between Min and
// Max, or exponential with Mean (capped at Max when Max > 0).
type Dist struct {
	Kind  string // "fixed", "uniform" or "exponential"; "" is always zero
	Value time.Duration
	Min   time.Duration
	Max   time.Duration
	Mean  time.Duration
}

// Sample draws one duration.
func (d Dist) Sample(r *rand.Rand) time.Duration {
	switch d.Kind {
	case "fixed":
		return d.Value
	case "uniform":
		if d.Max <= d.Min {
			return d.Min
		}
		return d.Min + time.Duration(r.Int64N(int64(d.Max-d.Min)+1))
	case "exponential":
		v := time.Duration(r.ExpFloat64() * float64(d.Mean))
		if d.Max > 0 && v > d.Max {
			v = d.Max
		}
		return v
	}
	return 0
}

// IsZero reports whether the distribution always gives zero.
func (d Dist) IsZero() bool {
	return d.Kind == "" || d.Kind == "fixed" && d.Value == 0
}

// dist reads "5ms" (fixed), {fixed: 5ms}, {uniform: [1ms, 10ms]} or
// {exponential: 20ms, max: 1s}.
func (d *decoder) dist(n *yaml.Node, path string) (Dist, error) {
	if n.Kind == yaml.ScalarNode {
		v, err := d.duration(n, path)
		return Dist{Kind: "fixed", Value: v}, err
	}
	var out Dist
	err := d.fields(n, path, []string{"fixed", "uniform", "exponential", "max"}, func(k string, v *yaml.Node, p string) error {
		if k != "max" && out.Kind != "" {
			return d.errf(v, p, "expected one of fixed, uniform or exponential, not both %s and %s", out.Kind, k)
		}
		var err error
		switch k {
		case "fixed":
			out.Kind = k
			out.Value, err = d.duration(v, p)
		case "exponential":
			out.Kind = k
			out.Mean, err = d.duration(v, p)
		case "max":
			out.Max, err = d.duration(v, p)
		case "uniform":
			out.Kind = k
			if v.Kind != yaml.SequenceNode || len(v.Content) != 2 {
				return d.errf(v, p, "expected [min, max] durations, got %s", describe(v))
			}
			if out.Min, err = d.duration(resolve(v.Content[0]), p+"[0]"); err != nil {
				return err
			}
			if out.Max, err = d.duration(resolve(v.Content[1]), p+"[1]"); err == nil && out.Max < out.Min {
				err = d.errf(v, p, "expected min <= max, got %s > %s", out.Min, out.Max)
			}
		}
		return err
	})
	if err == nil && out.Kind == "" {
		err = d.errf(n, path, "expected one of fixed, uniform or exponential")
	}
	return out, err
}

// gen produces one settings value for a device.
type gen interface {
	gen(r *rand.Rand, vars map[string]string) any
	names() []string
}

type genLiteral struct{ v any }
type genText struct{ t template }
type genChoice struct{ opts []gen }
type genUniform struct {
	min, max float64
	decimals int
}
type genInt struct{ min, max int64 }
type genMap struct {
	keys []string
	vals []gen
}
type genList struct{ items []gen }

func (g genLiteral) gen(*rand.Rand, map[string]string) any     { return g.v }
func (g genText) gen(_ *rand.Rand, vars map[string]string) any { return g.t.render(vars) }
func (g genChoice) gen(r *rand.Rand, vars map[string]string) any {
	return g.opts[r.IntN(len(g.opts))].gen(r, vars)
}
func (g genInt) gen(r *rand.Rand, _ map[string]string) any { return g.min + r.Int64N(g.max-g.min+1) }
func (g genUniform) gen(r *rand.Rand, _ map[string]string) any {
	v := g.min + r.Float64()*(g.max-g.min)
	p := math.Pow(10, float64(g.decimals))
	return math.Round(v*p) / p
}
func (g genMap) gen(r *rand.Rand, vars map[string]string) any {
	m := make(map[string]any, len(g.keys))
	for i, k := range g.keys {
		m[k] = g.vals[i].gen(r, vars)
	}
	return m
}
func (g genList) gen(r *rand.Rand, vars map[string]string) any {
	l := make([]any, len(g.items))
	for i, it := range g.items {
		l[i] = it.gen(r, vars)
	}
	return l
}

func (genLiteral) names() []string { return nil }
func (g genText) names() []string  { return g.t.names() }
func (g genChoice) names() []string {
	var out []string
	for _, o := range g.opts {
		out = append(out, o.names()...)
	}
	return out
}
func (genUniform) names() []string { return nil }
func (genInt) names() []string     { return nil }
func (g genMap) names() []string {
	var out []string
	for _, v := range g.vals {
		out = append(out, v.names()...)
	}
	return out
}
func (g genList) names() []string {
	var out []string
	for _, v := range g.items {
		out = append(out, v.names()...)
	}
	return out
}

// settingsGen reads a settings value: a literal (number, text, true/false,
// list, mapping), text with {placeholders}, or a generator:
// {$choice: [a, b]}, {$uniform: [18, 24], $decimals: 1}, {$int: [1, 10]}.
func (d *decoder) settingsGen(n *yaml.Node, path string, depth int) (gen, error) {
	if depth > 12 {
		return nil, d.errf(n, path, "settings nested deeper than 12 levels")
	}
	switch n.Kind {
	case yaml.ScalarNode:
		return d.scalarGen(n, path)
	case yaml.SequenceNode:
		var g genList
		err := d.list(n, path, func(_ int, e *yaml.Node, p string) error {
			item, err := d.settingsGen(e, p, depth+1)
			g.items = append(g.items, item)
			return err
		})
		return g, err
	case yaml.MappingNode:
		if len(n.Content) > 0 && strings.HasPrefix(n.Content[0].Value, "$") {
			return d.generator(n, path, depth)
		}
		var g genMap
		err := d.pairs(n, path, func(k string, _, v *yaml.Node, p string) error {
			item, err := d.settingsGen(v, p, depth+1)
			g.keys, g.vals = append(g.keys, k), append(g.vals, item)
			return err
		})
		return g, err
	}
	return nil, d.errf(n, path, "expected a settings value, got %s", describe(n))
}

func (d *decoder) scalarGen(n *yaml.Node, path string) (gen, error) {
	switch n.Tag {
	case "!!int":
		v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil {
			return nil, d.errf(n, path, "expected a 64-bit whole number, got %s", describe(n))
		}
		return genLiteral{v}, nil
	case "!!float":
		v, err := d.number(n, path)
		return genLiteral{v}, err
	case "!!bool":
		v, err := d.boolean(n, path)
		return genLiteral{v}, err
	case "!!null":
		return genLiteral{nil}, nil
	case "!!str":
		if !strings.ContainsAny(n.Value, "{}") {
			return genLiteral{n.Value}, nil
		}
		t, err := parseTemplate(n.Value)
		if err != nil {
			return nil, d.errf(n, path, "%v", err)
		}
		return genText{t}, nil
	}
	return nil, d.errf(n, path, "expected a number, text, true/false or null, got a value of type %s", n.Tag)
}

func (d *decoder) generator(n *yaml.Node, path string, depth int) (gen, error) {
	var g gen
	decimals := 1
	err := d.fields(n, path, []string{"$choice", "$uniform", "$int", "$decimals"}, func(k string, v *yaml.Node, p string) error {
		if k == "$decimals" {
			var err error
			decimals, err = d.count(v, p, 0, 9)
			return err
		}
		if g != nil {
			return d.errf(v, p, "expected one generator, got a second one (%s)", k)
		}
		if k == "$choice" {
			var c genChoice
			err := d.list(v, p, func(_ int, e *yaml.Node, ep string) error {
				o, err := d.settingsGen(e, ep, depth+1)
				c.opts = append(c.opts, o)
				return err
			})
			if err == nil && len(c.opts) == 0 {
				err = d.errf(v, p, "expected at least one alternative")
			}
			g = c
			return err
		}
		if v.Kind != yaml.SequenceNode || len(v.Content) != 2 {
			return d.errf(v, p, "expected [min, max], got %s", describe(v))
		}
		lo, err := d.number(resolve(v.Content[0]), p+"[0]")
		if err != nil {
			return err
		}
		hi, err := d.number(resolve(v.Content[1]), p+"[1]")
		if err != nil {
			return err
		}
		if hi < lo {
			return d.errf(v, p, "expected min <= max, got %v > %v", lo, hi)
		}
		if k == "$int" {
			if lo != math.Trunc(lo) || hi != math.Trunc(hi) || hi-lo > 1<<52 {
				return d.errf(v, p, "expected whole numbers, got [%v, %v]", lo, hi)
			}
			g = genInt{int64(lo), int64(hi)}
		} else {
			g = genUniform{min: lo, max: hi}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if g == nil {
		return nil, d.errf(n, path, "expected one of $choice, $uniform or $int")
	}
	if u, ok := g.(genUniform); ok {
		u.decimals = decimals
		g = u
	}
	return g, nil
}

// mergeSettings overlays src onto dst: nested mappings merge, anything else replaces.
func mergeSettings(dst, src map[string]any) {
	for k, v := range src {
		sm, ok1 := v.(map[string]any)
		dm, ok2 := dst[k].(map[string]any)
		if ok1 && ok2 {
			mergeSettings(dm, sm)
			continue
		}
		dst[k] = v
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
