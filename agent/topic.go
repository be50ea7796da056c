package agent

import (
	"fmt"
	"strings"
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

// CheckDeviceID reports whether id can name a device: 1 to MaxDeviceIDBytes
// letters, digits, '-', '.' or '_'. That keeps it a valid identifier address
// and a single MQTT topic level (no '/', '+' or '#').
func CheckDeviceID(id string) error {
	if id == "" {
		return fmt.Errorf("agent: empty device id")
	}
	if len(id) > MaxDeviceIDBytes {
		return fmt.Errorf("agent: device id of %d bytes exceeds %d", len(id), MaxDeviceIDBytes)
	}
	for i := 0; i < len(id); i++ {
		if !isDeviceIDChar(id[i]) {
			return fmt.Errorf("agent: device id %q: character %q at byte %d is not a letter, digit, '-', '.' or '_'", id, id[i], i)
		}
	}
	return nil
}

func isDeviceIDChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_'
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
