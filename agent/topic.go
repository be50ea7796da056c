package agent

import (
	"fmt"
	"strings"

	"github.com/fleetvault/fleetvault/identifiers"
)

// MQTT topics of the protocol. A device's requests arrive on
// fleetvault/v1/<device-id>/req and it answers on fleetvault/v1/<device-id>/res;
// the server subscribes once to ResponseWildcard.
const (
	TopicRoot        = "fleetvault/v1/"
	ResponseWildcard = TopicRoot + "+/res"
	RequestWildcard  = TopicRoot + "+/req"
)

// MaxDeviceIDBytes is the longest device id: it is an MQTT client id, user
// name, topic level and identifier address at once.
const MaxDeviceIDBytes = 128

// CheckDeviceID reports whether id can name a device (agent-protocol.md
// section 1): an identifier address without brackets (identifiers.CheckHost:
// a host name of dot-separated labels of 1 to 63 letters, digits, '-' and
// '_', or an IPv4 address; never "1.2") of at most MaxDeviceIDBytes. That
// keeps it a valid identifier address and a single MQTT topic level (no '/',
// '+' or '#').
func CheckDeviceID(id string) error {
	if id == "" {
		return fmt.Errorf("agent: empty device id")
	}
	if len(id) > MaxDeviceIDBytes {
		return fmt.Errorf("agent: device id of %d bytes exceeds %d", len(id), MaxDeviceIDBytes)
	}
	if err := identifiers.CheckHost(id); err != nil {
		return fmt.Errorf("agent: device id %q: %w", id, err)
	}
	return nil
}

// RequestTopic returns the topic a device receives its requests on.
func RequestTopic(device string) string { return TopicRoot + device + "/req" }

// ResponseTopic returns the topic a device publishes its answers and presence on.
func ResponseTopic(device string) string { return TopicRoot + device + "/res" }

// ParseResponseTopic returns the device id of a response topic, and false when
// topic is not fleetvault/v1/<valid device id>/res.
func ParseResponseTopic(topic string) (string, bool) { return parseTopic(topic, "/res") }

// ParseRequestTopic returns the device id of a request topic, and false when
// topic is not fleetvault/v1/<valid device id>/req.
func ParseRequestTopic(topic string) (string, bool) { return parseTopic(topic, "/req") }

func parseTopic(topic, suffix string) (string, bool) {
	rest, ok := strings.CutPrefix(topic, TopicRoot)
	if !ok {
		return "", false
	}
	dev, ok := strings.CutSuffix(rest, suffix)
	if !ok || CheckDeviceID(dev) != nil {
		return "", false
	}
	return dev, true
}
