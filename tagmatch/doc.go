// Package tagmatch is the tag model and the matching that group restore uses to
// decide which backed-up settings go to which device.
//
// # Tags
//
// A Tag is what a device says about itself: ordered key/value attributes with
// well-known keys (manufacturer, product, model, firmware, zone — the article's
// "User info") and free keys (room, floor, ...). Keys are case-insensitive:
// NormalizeKey lower-cases them, turns inner spaces into "_" and resolves the alias
// user_info → zone. Values are kept as given, trimmed, and compared exactly unless
// a Policy says ignorecase.
//
// A tag has three text forms:
//
//   - the article's free text, ParseText and Tag.Text:
//     "Acme Corp. climate control model: xyz User info: South"
//   - the structured form for flags and config, ParseKV and Tag.String:
//     "manufacturer=Acme Corp.; model=xyz; zone=South"
//   - JSON, an object in tag order: {"manufacturer":"Acme Corp.","zone":"South"}
//
// Tag.Canonical gives an order-independent string for indexing.
//
// # Matching
//
// A Policy (ParsePolicy) names the equality keys (default manufacturer, product,
// model, zone) and selectors that restrict the devices:
//
//	model in (xyz, xyz2), firmware >= 2.1, firmware < 3, zone != North, room ~ "bed*"
//
// A candidate (a backed-up piece) matches a device when every equality key the
// candidate has is equal on the device; a key the candidate lacks is a wildcard,
// and the value "*" means "any value, but present". The most specific match wins
// (2 points per exact key, 1 per "*"); if the best two tie the result is
// Ambiguous and nothing must be written. Build a Matcher once per job with
// NewMatcher and call Match per device; it is safe for concurrent use and takes
// well under a microsecond for a hundred candidates. Explain turns a Result into
// one line a person can read.
//
// The normative description, with ABNF and test vectors, is docs/spec/tagmatch.md
// and docs/spec/vectors/tagmatch.json.
//
// # Caveats
//
// The free-text form cannot always tell where the manufacturer ends and the
// product begins: the lead splits after a company suffix (Corp., Inc., GmbH...),
// else after the first word ending in ".", else after the first word. Devices
// whose manufacturer does not fit should quote it ("Acme Widgets" climate control)
// or send the structured form. Tags over the limits (MaxAttrs, MaxKeyLen,
// MaxValueLen) are refused, never truncated.
package tagmatch
