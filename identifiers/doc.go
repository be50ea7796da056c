// Package identifiers implements Fleetvault's identifier standard
// (docs/spec/identifiers.md): the text that says what a media agent or a
// device must read or write, and where.
//
//	[scheme "://"] address [":" port] "?" method [":" params] "?" location
//
// For example
//
//	10.10.11.44:6543?WRITE:IP:10.10.11.45,dedupe,<more params>?/mtree/backup/<client-id>
//
// asks the media agent at 10.10.11.44, port 6543, to deduplicate and write to
// /mtree/backup/<client-id> on the backup media at 10.10.11.45, and
//
//	mqtt://home0001-climate?READ:SETTINGS?TAG
//
// asks the device home0001-climate, over MQTT, for its tag.
//
// # Basics
//
// Parse reads an identifier into an ID; ID.String writes its canonical form,
// and Parse(id.String()) equals id for every id Parse returns. Params are an
// ordered list split on commas, each kept as written: a bare word ("dedupe"),
// a key:value item ("IP:10.10.11.45", see SplitParam and ID.ParamValue) or a
// placeholder ("<backup catalog info>"), which is one item whatever it holds.
// The settings form the article also uses, with the location after a ':'
// ("10.10.33.33:7890?READ:SETTINGS:TAG"), parses to the same ID as the '?'
// form. ReadTag, ReadSettings and WriteSettings build the three identifiers of
// the agent protocol.
//
// A malformed identifier gives a *SyntaxError with the column (counted in
// Unicode code points from 1) and what was expected there.
//
// # Disaster recovery
//
// When the backup server runs on the DR site, Rewrite maps every identifier
// through the replication rules (ReadReplication reads them from YAML): the
// address, and any IP address among the params, move to their replicas.
//
// # Caveats
//
// An ID holds a slice, so compare IDs with ID.Equal, not ==. An ID built by
// hand is not checked: ID.Validate says whether it is valid and canonical.
// Placeholders are kept as text; filling them in is up to the method.
package identifiers
