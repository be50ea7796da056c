// Package identifiers implements Fleetvault's identifier standard
// (docs/spec/identifiers.md): the text that says what to read or write, where.
//
//	[scheme "://"] address [":" port] "?" method [":" params] "?" location
//
// For example 10.10.11.44:6543?WRITE:IP:10.10.11.45,dedupe,<more params>?/mtree/backup/<client-id>
// asks the media agent at 10.10.11.44, port 6543, to deduplicate and write to
// /mtree/backup/<client-id> on the backup media at 10.10.11.45, and
// mqtt://home0001-climate?READ:SETTINGS?TAG asks the device home0001-climate,
// over MQTT, for its tag.
package identifiers
