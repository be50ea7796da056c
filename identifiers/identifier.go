package identifiers

// ID is a parsed identifier: address:port?METHOD:params?location, with an optional
// transport scheme prefix (mqtt://, mqtts://, coap://, coaps://).
//
// The zero Port means no port was given. Params are kept as written, in order.
// ID.String returns the canonical form; Parse(id.String()) equals id.
type ID struct {
	Scheme   string   // "", "mqtt", "mqtts", "coap" or "coaps"
	Address  string   // IPv4, IPv6 (without brackets) or a DNS name / device id
	Port     int      // 0 if absent
	Method   string   // e.g. READ, WRITE, READ_SNAPSHOT (upper case)
	Params   []string // ordered items, each a bare word or key:value, as written
	Location string   // what to read or write, e.g. TAG, TAG+SETTINGS, /xyz
}
