package identifiers

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Rule maps an endpoint of the lost site (Local) to its replica on the DR site
// (Remote), as in the Replication resource of the resource database:
//
//	10.10.11.44 6543  10.50.4.4 3456
//	10.10.11.45       10.50.4.4
type Rule struct{ Local, Remote Endpoint }

// String returns "local -> remote".
func (r Rule) String() string { return r.Local.String() + " -> " + r.Remote.String() }

// ParseEndpoint reads "host", "host:port", "[ipv6]", "[ipv6]:port" or a bare
// IPv6 address. host is an IPv4 address or a host name, with the same rules as
// the address of an identifier. IPv6 addresses are returned in canonical form.
func ParseEndpoint(s string) (Endpoint, error) {
	bad := func(why string) (Endpoint, error) {
		return Endpoint{}, fmt.Errorf("%q: not an IP address or host%s", s, why)
	}
	if s == "" {
		return bad(" (empty)")
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Is6() && a.Zone() == "" {
		return Endpoint{Host: a.String()}, nil
	}
	host, rest := s, ""
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return bad(": '[' is never closed by ']'")
		}
		a, err := parseIPv6(s[1:end])
		if err != nil {
			return bad(": " + err.Error())
		}
		host, rest = a, s[end+1:]
	} else {
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			host, rest = s[:i], s[i:]
		}
		for i := 0; i < len(host); i++ {
			if !isHostChar(host[i]) {
				return bad(fmt.Sprintf(": unexpected %q (a host has letters, digits, '-', '.', '_')", host[i]))
			}
		}
		if host == "" {
			return bad(" (no host before ':')")
		}
		if _, err := checkHost(host); err != nil {
			return bad(": " + err.Error())
		}
	}
	e := Endpoint{Host: host}
	if rest == "" {
		return e, nil
	}
	digits, ok := strings.CutPrefix(rest, ":")
	n, err := strconv.Atoi(digits)
	if !ok || err != nil || !allDigits(digits) || len(digits) > 5 || n < 1 || n > 65535 {
		return Endpoint{}, fmt.Errorf("%q: expected a port number (1-65535) after the host, got %q", s, rest)
	}
	e.Port = n
	return e, nil
}

// Rewrite returns id as the DR site must use it: its address, and every IP
// address among its params, replaced according to rules.
//
// The address matches a rule whose Local host is the same host (IP addresses
// compared as addresses, host names without regard to case) and whose Local
// port is the identifier's port; failing that, a rule with the same host and
// no port. The new port is the Remote port, or the old one if Remote has none.
//
// Params are rewritten item by item, by the same matching: an item that is an
// IP address or IP:port ("10.10.11.99"), or a key:value item whose value is
// one ("IP:10.10.11.45"). Host names, placeholders and the location are left
// alone. id itself is not modified.
func Rewrite(id ID, rules []Rule) ID {
	out := id
	if e, ok := rewriteEndpoint(Endpoint{Host: id.Address, Port: id.Port}, rules); ok {
		out.Address, out.Port = e.Host, e.Port
	}
	if len(id.Params) > 0 {
		out.Params = slices.Clone(id.Params)
		for i, p := range out.Params {
			out.Params[i] = rewriteParam(p, rules)
		}
	}
	return out
}

// rewriteEndpoint applies the most specific rule matching e.
func rewriteEndpoint(e Endpoint, rules []Rule) (Endpoint, bool) {
	var hostOnly *Rule
	for i := range rules {
		r := &rules[i]
		if !sameHost(r.Local.Host, e.Host) {
			continue
		}
		if r.Local.Port != 0 && r.Local.Port == e.Port {
			return apply(*r, e), true
		}
		if r.Local.Port == 0 && hostOnly == nil {
			hostOnly = r
		}
	}
	if hostOnly == nil {
		return e, false
	}
	return apply(*hostOnly, e), true
}

func apply(r Rule, e Endpoint) Endpoint {
	out := Endpoint{Host: r.Remote.Host, Port: e.Port}
	if a, err := netip.ParseAddr(out.Host); err == nil {
		out.Host = a.String()
	}
	if r.Remote.Port != 0 {
		out.Port = r.Remote.Port
	}
	return out
}

// sameHost compares IP addresses as addresses and host names without regard to case.
func sameHost(a, b string) bool {
	ia, errA := netip.ParseAddr(a)
	ib, errB := netip.ParseAddr(b)
	if errA == nil || errB == nil {
		return errA == nil && errB == nil && ia == ib
	}
	return strings.EqualFold(a, b)
}

// rewriteParam rewrites an item that is an IP endpoint, or the value of a
// key:value item that is one.
func rewriteParam(item string, rules []Rule) string {
	if s, ok := rewriteIP(item, rules); ok {
		return s
	}
	if key, value, ok := SplitParam(item); ok {
		if s, ok := rewriteIP(value, rules); ok {
			return key + ":" + s
		}
	}
	return item
}

// rewriteIP rewrites s if it is an IP address literal, with or without a port,
// and a rule matches it. The result keeps the form of s: brackets around an
// IPv6 address only if s had them or a port is added.
func rewriteIP(s string, rules []Rule) (string, bool) {
	if s == "" || strings.ContainsAny(s, "<>") {
		return "", false
	}
	e, err := ParseEndpoint(s)
	if err != nil {
		return "", false
	}
	if _, err := netip.ParseAddr(e.Host); err != nil {
		return "", false // a host name, not an IP address
	}
	ne, ok := rewriteEndpoint(e, rules)
	if !ok {
		return "", false
	}
	if ne.Port == 0 && s[0] != '[' {
		return ne.Host, true
	}
	return ne.String(), true
}
