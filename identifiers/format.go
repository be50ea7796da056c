package identifiers

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Methods, the settings param and the locations of the identifiers Fleetvault's
// agent protocol uses.
const (
	MethodRead       = "READ"
	MethodWrite      = "WRITE"
	ParamSettings    = "SETTINGS"
	LocationTag      = "TAG"          // READ:SETTINGS?TAG: the device's tag
	LocationSettings = "SETTINGS"     // READ:SETTINGS?SETTINGS: its settings
	LocationWrite    = "TAG+SETTINGS" // WRITE:SETTINGS?TAG+SETTINGS: apply settings
)

// String returns the canonical form of id:
//
//	[scheme "://"] address [":" port] "?" METHOD [":" param *("," param)] "?" location
//
// with the scheme in lower case, the method in upper case, an IPv6 address in
// brackets, the port only when it is not zero, and the location always after
// '?'. For an id that Parse returned, Parse(id.String()) equals id.
func (id ID) String() string {
	var b strings.Builder
	b.Grow(len(id.Address) + len(id.Method) + len(id.Location) + 32)
	if id.Scheme != "" {
		b.WriteString(strings.ToLower(id.Scheme))
		b.WriteString("://")
	}
	b.WriteString(id.HostPort())
	b.WriteByte('?')
	b.WriteString(strings.ToUpper(id.Method))
	for i, p := range id.Params {
		if i == 0 {
			b.WriteByte(':')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(p)
	}
	b.WriteByte('?')
	b.WriteString(id.Location)
	return b.String()
}

// HostPort returns the address and port as written in an identifier:
// "10.10.11.44:6543", "[::1]:5683", or the address alone when Port is 0.
func (id ID) HostPort() string {
	return Endpoint{Host: id.Address, Port: id.Port}.String()
}

// Equal reports whether id and other are the same identifier, field by field.
// (ID holds a slice, so == does not compile.)
func (id ID) Equal(other ID) bool {
	return id.Scheme == other.Scheme && id.Address == other.Address && id.Port == other.Port &&
		id.Method == other.Method && id.Location == other.Location && slices.Equal(id.Params, other.Params)
}

// Validate reports whether id is a valid identifier in canonical form, that
// is, one Parse could have returned. Use it on identifiers built by hand.
func (id ID) Validate() error {
	back, err := Parse(id.String())
	if err != nil {
		return err
	}
	if !back.Equal(id) {
		return fmt.Errorf("identifier %q is not in canonical form: it parses as %#v, not %#v", id.String(), back, id)
	}
	return nil
}

// Param returns the i-th param (from 0) as written, or "" if there is none.
func (id ID) Param(i int) string {
	if i < 0 || i >= len(id.Params) {
		return ""
	}
	return id.Params[i]
}

// HasParam reports whether a param is the bare word name, or a key:value item
// with key name; names are compared without regard to case.
func (id ID) HasParam(name string) bool {
	for _, p := range id.Params {
		k, _, _ := SplitParam(p)
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// ParamValue returns the value of the first key:value param whose key is key
// (compared without regard to case), e.g. "10.10.11.45" for key "IP" in
// WRITE:IP:10.10.11.45,dedupe.
func (id ID) ParamValue(key string) (string, bool) {
	for _, p := range id.Params {
		k, v, ok := SplitParam(p)
		if ok && strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

// SplitParam splits a param item at its first ':' outside a placeholder into
// key and value: "IP:10.10.11.45" gives "IP", "10.10.11.45", true. A bare
// word, or a placeholder such as "<backup catalog info>", gives the item and
// false.
func SplitParam(item string) (key, value string, ok bool) {
	depth := 0
	for i := 0; i < len(item); i++ {
		switch item[i] {
		case '<':
			depth++
		case '>':
			depth--
		case ':':
			if depth == 0 {
				return item[:i], item[i+1:], true
			}
		}
	}
	return item, "", false
}

// IsSettings reports whether id is one of the settings identifiers of the agent
// protocol: method READ or WRITE with SETTINGS as its first param.
func (id ID) IsSettings() bool {
	return (id.Method == MethodRead || id.Method == MethodWrite) && strings.EqualFold(id.Param(0), ParamSettings)
}

// Settings returns the settings identifier for location: READ:SETTINGS?TAG,
// READ:SETTINGS?SETTINGS, or WRITE:SETTINGS?TAG+SETTINGS when location is
// LocationWrite. scheme is "", "mqtt", "mqtts", "coap" or "coaps"; address a
// device id, host name or IP address; port 0 for none. The result is not
// checked: call Validate on addresses that come from users.
func Settings(scheme, address string, port int, location string) ID {
	method := MethodRead
	if location == LocationWrite {
		method = MethodWrite
	}
	return ID{Scheme: scheme, Address: address, Port: port, Method: method, Params: []string{ParamSettings}, Location: location}
}

// ReadTag returns scheme://address:port?READ:SETTINGS?TAG, which asks a device for its tag.
func ReadTag(scheme, address string, port int) ID {
	return Settings(scheme, address, port, LocationTag)
}

// ReadSettings returns scheme://address:port?READ:SETTINGS?SETTINGS, which asks a
// device for its settings.
func ReadSettings(scheme, address string, port int) ID {
	return Settings(scheme, address, port, LocationSettings)
}

// WriteSettings returns scheme://address:port?WRITE:SETTINGS?TAG+SETTINGS, which
// asks a device to apply settings.
func WriteSettings(scheme, address string, port int) ID {
	return Settings(scheme, address, port, LocationWrite)
}

// Endpoint is a host and an optional port (0 for none), as in the local and
// remote sides of a replication rule.
type Endpoint struct {
	Host string // IPv4, IPv6 (without brackets) or host name
	Port int    // 0 if absent
}

// String returns "host:port", "[v6]:port", or the host alone when Port is 0.
func (e Endpoint) String() string {
	h := e.Host
	if strings.IndexByte(h, ':') >= 0 {
		h = "[" + h + "]"
	}
	if e.Port == 0 {
		return h
	}
	return h + ":" + strconv.Itoa(e.Port)
}
