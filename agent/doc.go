// Package agent is the media-agent protocol: the messages a Fleetvault server and
// a device exchange to read a device's tag and settings and to write settings,
// the device side that a device maker embeds, and the MQTT and CoAP transports
// that carry them.
//
// # Messages
//
// Requests and responses are CBOR maps with a version and a correlation id;
// settings documents travel as deterministic CBOR (RFC 8949 core deterministic
// encoding) so equal settings are equal bytes and hash alike. Decoders refuse
// anything over MaxMessageBytes, deeper than MaxNesting or with more than
// MaxMapPairs pairs. Unknown fields are ignored, so old and new agents interoperate.
//
// What a request asks is said by its identifier (package identifiers):
//
//	mqtt://home1-thermo?READ:SETTINGS?TAG            the device's tag
//	mqtt://home1-thermo?READ:SETTINGS?SETTINGS       its settings and their hash
//	mqtt://home1-thermo?READ:SETTINGS?TAG+SETTINGS   both, in one round trip
//	mqtt://home1-thermo?WRITE:SETTINGS?TAG+SETTINGS  apply settings, answer the applied hash
//
// # Device side
//
// A device maker implements Device and wraps it in a Handler, which checks
// that a request is for this device, answers reads, applies a write once per
// job id (a repeat is a no-op success, other settings under the same job a
// conflict) and answers the hash of what the device then holds. Transports
// feed it bytes (HandleBytes) and send its Hello when they connect:
//
//	h := agent.NewHandler("home1-thermo", thermostat, agent.HandlerOptions{})
//	err := mqtt.Serve(ctx, h, mqtt.DeviceOptions{BrokerURL: url, Password: pw})
//
// # Server side
//
// Transport carries a request to a device and brings back its answer; the
// implementations are in agent/mqtt and agent/coap, and both pass the
// conformance suite in agent/agenttest. Over MQTT, requests go to
// RequestTopic(device) and answers come back on ResponseTopic(device); the
// server subscribes once to ResponseWildcard.
//
// The normative text is docs/spec/agent-protocol.md; its test vectors,
// docs/spec/vectors/agent.json, are checked by this package's tests.
package agent
