package devicesim

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// SpecError is a mistake in a fleet file: which file, where in it (a path such
// as types[2].faults.offline, and a line), and what was expected.
type SpecError struct {
	File string
	Path string
	Line int
	Msg  string
}

func (e *SpecError) Error() string {
	loc := e.File
	if loc == "" {
		loc = "fleet file"
	}
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", loc, e.Line)
	}
	if e.Path == "" {
		return fmt.Sprintf("devicesim: %s: %s", loc, e.Msg)
	}
	return fmt.Sprintf("devicesim: %s: %s: %s", loc, e.Path, e.Msg)
}

// decoder walks a YAML node tree, remembering the file for errors.
type decoder struct{ file string }

func (d *decoder) errf(n *yaml.Node, path, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &SpecError{File: d.file, Path: path, Line: line, Msg: fmt.Sprintf(format, args...)}
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an unsupported YAML node"
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// fields walks a mapping, calling fn for each known key; unknown keys are errors
// so a typo does not silently disable a fault.
func (d *decoder) fields(n *yaml.Node, path string, known []string, fn func(key string, v *yaml.Node, p string) error) error {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		return d.errf(n, path, "expected a mapping with keys %s, got %s", strings.Join(known, ", "), describe(n))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		p := join(path, k.Value)
		if !contains(known, k.Value) {
			return d.errf(k, p, "unknown key %q; expected one of %s", k.Value, strings.Join(known, ", "))
		}
		if seen[k.Value] {
			return d.errf(k, p, "key given twice")
		}
		seen[k.Value] = true
		if err := fn(k.Value, v, p); err != nil {
			return err
		}
	}
	return nil
}

// pairs walks a mapping with free keys, in document order.
func (d *decoder) pairs(n *yaml.Node, path string, fn func(key string, k, v *yaml.Node, p string) error) error {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		return d.errf(n, path, "expected a mapping, got %s", describe(n))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		p := join(path, k.Value)
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			return d.errf(k, p, "expected a non-empty text key")
		}
		if seen[k.Value] {
			return d.errf(k, p, "key given twice")
		}
		seen[k.Value] = true
		if err := fn(k.Value, k, v, p); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) list(n *yaml.Node, path string, fn func(i int, v *yaml.Node, p string) error) error {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		return d.errf(n, path, "expected a list, got %s", describe(n))
	}
	for i, v := range n.Content {
		if err := fn(i, resolve(v), fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) str(n *yaml.Node, path string) (string, error) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", d.errf(n, path, "expected text, got %s", describe(n))
	}
	return n.Value, nil
}

func (d *decoder) boolean(n *yaml.Node, path string) (bool, error) {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
		return false, d.errf(n, path, "expected true or false, got %s", describe(n))
	}
	return b, nil
}

func (d *decoder) count(n *yaml.Node, path string, min, max int) (int, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!int" {
		if v, err := strconv.Atoi(strings.ReplaceAll(n.Value, "_", "")); err == nil && v >= min && v <= max {
			return v, nil
		}
	}
	return 0, d.errf(n, path, "expected a whole number from %d to %d, got %s", min, max, describe(n))
}

func (d *decoder) number(n *yaml.Node, path string) (float64, error) {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		if v, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64); err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
			return v, nil
		}
	}
	return 0, d.errf(n, path, "expected a number, got %s", describe(n))
}

// share reads a fraction of devices: 0.1, or "10%".
func (d *decoder) share(n *yaml.Node, path string) (float64, error) {
	if n.Kind == yaml.ScalarNode && strings.HasSuffix(n.Value, "%") {
		v, err := strconv.ParseFloat(strings.TrimSuffix(n.Value, "%"), 64)
		if err == nil && v >= 0 && v <= 100 {
			return v / 100, nil
		}
	} else if v, err := d.number(n, path); err == nil && v >= 0 && v <= 1 {
		return v, nil
	}
	return 0, d.errf(n, path, "expected a share between 0 and 1 (or 0%% to 100%%), got %s", describe(n))
}

// duration reads "250ms", "2s", "1m30s".
func (d *decoder) duration(n *yaml.Node, path string) (time.Duration, error) {
	if n.Kind == yaml.ScalarNode {
		if v, err := time.ParseDuration(n.Value); err == nil && v >= 0 {
			return v, nil
		}
	}
	return 0, d.errf(n, path, "expected a duration such as 250ms, 2s or 1m, got %s", describe(n))
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
