package identifiers

import (
	"errors"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"
)

// ReadReplication reads replication rules from YAML:
//
//	replication:
//	  - local: 10.10.11.44:6543
//	    remote: 10.50.4.4:3456
//	  - local: 10.10.11.45
//	    remote: 10.50.4.4
//
// name is used in errors, which name the entry (from 1) and the field, e.g.
// `replication.yaml: entry 2: remote "10.50.4.x": not an IP address or host`.
// Other top-level keys are ignored, so the list may live in a larger file.
// Two entries with the same local endpoint are an error. IPv6 endpoints must be
// quoted in YAML: "[2001:db8::1]:5683".
func ReadReplication(r io.Reader, name string) ([]Rule, error) {
	var doc yaml.Node
	if err := yaml.NewDecoder(r).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty file: expected a replication: list of local/remote entries", name)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: line %d: expected a mapping with a replication: list", name, root.Line)
	}
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "replication" {
			list = root.Content[i+1]
		}
	}
	switch {
	case list == nil:
		return nil, fmt.Errorf("%s: no replication: list (expected replication: followed by entries with local: and remote:)", name)
	case list.Kind == yaml.ScalarNode && list.Tag == "!!null":
		return nil, nil // an empty list: no rules
	case list.Kind != yaml.SequenceNode:
		return nil, fmt.Errorf("%s: line %d: replication: expected a list of entries with local: and remote:", name, list.Line)
	}
	rules := make([]Rule, 0, len(list.Content))
	for i, entry := range list.Content {
		rule, err := readRule(entry)
		if err != nil {
			return nil, fmt.Errorf("%s: entry %d: %w", name, i+1, err)
		}
		for j, prev := range rules {
			if prev.Local == rule.Local {
				return nil, fmt.Errorf("%s: entry %d: local %s is already mapped by entry %d", name, i+1, rule.Local, j+1)
			}
		}
		rules = append(rules, rule)
	}
	return rules, nil
}

// readRule reads one {local, remote} entry.
func readRule(n *yaml.Node) (Rule, error) {
	if n.Kind != yaml.MappingNode {
		return Rule{}, fmt.Errorf("line %d: expected local: and remote:", n.Line)
	}
	var rule Rule
	var seen [2]bool
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var dst *Endpoint
		var idx int
		switch k.Value {
		case "local":
			dst, idx = &rule.Local, 0
		case "remote":
			dst, idx = &rule.Remote, 1
		default:
			return Rule{}, fmt.Errorf("line %d: unknown field %q (expected local and remote)", k.Line, k.Value)
		}
		if seen[idx] {
			return Rule{}, fmt.Errorf("line %d: %s given twice", k.Line, k.Value)
		}
		seen[idx] = true
		if v.Kind != yaml.ScalarNode {
			return Rule{}, fmt.Errorf("%s: line %d: expected an address such as 10.10.11.44:6543 (quote IPv6 addresses: \"[2001:db8::1]:5683\")", k.Value, v.Line)
		}
		e, err := ParseEndpoint(v.Value)
		if err != nil {
			return Rule{}, fmt.Errorf("%s %w", k.Value, err)
		}
		*dst = e
	}
	switch {
	case !seen[0]:
		return Rule{}, fmt.Errorf("line %d: local is missing", n.Line)
	case !seen[1]:
		return Rule{}, fmt.Errorf("line %d: remote is missing", n.Line)
	}
	return rule, nil
}
