package identifiers

import (
	"errors"
	"fmt"
	"strings"
)

// ParamBroker is the key of the param that names an MQTT device's broker
// shard: mqtt://home0001-climate?READ:SETTINGS,broker:shard2?TAG
// (docs/spec/identifiers.md section 9.1).
const ParamBroker = "broker"

// DefaultBroker is the broker of an MQTT identifier without a broker param.
const DefaultBroker = ""

// ErrBrokerParam marks a malformed broker param (see ID.Broker).
var ErrBrokerParam = errors.New("malformed broker param")

// Broker returns the name of the broker shard an MQTT identifier names in a
// broker:NAME param, or DefaultBroker when it names none. The key is compared
// without regard to case; NAME must be a ValidBrokerName, and at most one
// broker param may appear. Errors wrap ErrBrokerParam and quote the param.
func (id ID) Broker() (string, error) {
	name, found := DefaultBroker, false
	for _, p := range id.Params {
		k, v, ok := SplitParam(p)
		if !ok || !strings.EqualFold(k, ParamBroker) {
			continue
		}
		if found {
			return "", fmt.Errorf("%w: %q and %q: at most one broker param", ErrBrokerParam, ParamBroker+":"+name, p)
		}
		if !ValidBrokerName(v) {
			return "", fmt.Errorf("%w: %q: a broker name is 1 to 63 letters, digits, '-' or '_'", ErrBrokerParam, p)
		}
		name, found = v, true
	}
	return name, nil
}

// BrokerParam returns the identifier's broker param as written, or "" when it
// has none. A request built from a device's identifier carries it, so that
// the transport routes the request to the device's shard.
func (id ID) BrokerParam() string {
	for _, p := range id.Params {
		if k, _, ok := SplitParam(p); ok && strings.EqualFold(k, ParamBroker) {
			return p
		}
	}
	return ""
}

// ValidBrokerName reports whether s can name a broker shard: one label of a
// host name (1 to 63 ASCII letters, digits, '-' or '_'), so it is also a
// valid MQTT topic level and YAML key.
func ValidBrokerName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
