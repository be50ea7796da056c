package broker

import "strings"

// Topics of the media-agent protocol (docs/spec). A device's request topic
// carries the server's requests to it; its response topic carries its answers.
const (
	topicPrefix = "fleetvault/v1/"
	reqSuffix   = "/req"
	resSuffix   = "/res"

	// ResponseFilter is the one subscription the server needs: every device's
	// response topic.
	ResponseFilter = topicPrefix + "+" + resSuffix
)

// RequestTopic returns the topic the server publishes device's requests to.
func RequestTopic(device string) string { return topicPrefix + device + reqSuffix }

// ResponseTopic returns the topic device publishes its responses to.
func ResponseTopic(device string) string { return topicPrefix + device + resSuffix }

// DeviceOf returns the device id a request or response topic names, and
// whether topic is one (with a valid device id).
func DeviceOf(topic string) (device string, ok bool) {
	rest, ok := strings.CutPrefix(topic, topicPrefix)
	if !ok {
		return "", false
	}
	if d, ok := strings.CutSuffix(rest, reqSuffix); ok && ValidName(d) {
		return d, true
	}
	if d, ok := strings.CutSuffix(rest, resSuffix); ok && ValidName(d) {
		return d, true
	}
	return "", false
}

// deviceMay reports whether the device called name may read (subscribe to
// and receive from) or write (publish to) topic: its own request topic to
// read, its own response topic to write, nothing else.
func deviceMay(name, topic string, write bool) bool {
	if write {
		return topic == ResponseTopic(name)
	}
	return topic == RequestTopic(name)
}

// serverMay reports whether a server identity may read or write topic: it
// writes any device's request topic and reads response topics, singly or all
// at once through ResponseFilter, optionally as a shared subscription
// ($share/<group>/...) so several server processes can split the load.
func serverMay(topic string, write bool) bool {
	if write {
		d, ok := strings.CutSuffix(topic, reqSuffix)
		d, ok2 := strings.CutPrefix(d, topicPrefix)
		return ok && ok2 && ValidName(d)
	}
	if rest, ok := strings.CutPrefix(topic, "$share/"); ok {
		group, filter, ok := strings.Cut(rest, "/")
		if !ok || !ValidName(group) {
			return false
		}
		topic = filter
	}
	d, ok := strings.CutSuffix(topic, resSuffix)
	d, ok2 := strings.CutPrefix(d, topicPrefix)
	return ok && ok2 && (d == "+" || ValidName(d))
}
