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
//	mqtt://home1-thermo?WRITE:SETTINGS?TAG+SETTINGS  apply settings, answer the applied hash
//
// The normative text is docs/spec/agent-protocol.md.
package agent
