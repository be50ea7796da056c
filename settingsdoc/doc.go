// Package settingsdoc works on settings documents (the CBOR maps of
// agent.Settings) by JSON Pointer: restore profiles that say which parts of a
// document a restore writes, and key-level differences between two documents.
//
// # Pointers
//
// A pointer is RFC 6901 text ("/network/ssid", "/a~1b" for the key "a/b")
// over the decoded document. A reference token selects a member of a map by
// its text-string key, or an element of an array by its decimal index. The
// token "*" selects every member (or element) at that one level. See
// docs/spec/profiles.md for the normative rules.
//
// # Profiles
//
// Profile.Compile checks a profile once; Compiled.Apply merges a backed-up
// document with a device's current one: the backup (or, with only, the
// device's document with the listed sections taken from the backup), then the
// kept pointers put back from the device, then the set pointers given their
// templated values. The result is deterministically encoded, so its hash is
// what the device must acknowledge.
//
// # Caveats
//
// A member whose key is literally "*" cannot be addressed by a profile, and a
// profile never removes an array element (it can only replace whole arrays or
// single elements): a profile that would is refused for that device.
package settingsdoc
