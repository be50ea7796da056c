// Package frame is the one record framing every Fleetvault store uses: each
// value a bucket holds (a device, a group, a restore outcome, a journal
// entry, and whatever record is added later) is written as a frame that
// carries a CRC-32C over its bucket, its key and its bytes, and, in an
// encrypted installation, the record sealed with the repository key.
//
// # Basics
//
// A Codec encodes and decodes frames. The zero Codec writes clear frames
// (checksum only); a Codec made with a Cipher writes sealed frames
// (authenticated encryption, the bucket and key as associated data, so a
// record moved to another key or bucket does not open):
//
//	c := frame.New(key)                      // key: a frame.Cipher, nil for clear
//	v := c.Encode(bucket, id, body)          // store v under id in bucket
//	body, err := c.Decode(bucket, id, v)     // errors wrap ErrDamaged or ErrSealed
//
// Verify checks a frame's checksum without a key, which is what a check
// of the files (fleetvault check) does for every record of every store.
// docs/spec/catalog.md ("Record frames") is normative.
//
// # Caveats
//
// Values written before frames existed (JSON and CBOR records of format 1)
// do not start with the frame marker; Legacy reports them, and the stores
// rewrite them as frames when they are opened for writing. Bucket entries
// with no value (index entries, nested buckets) are not records and carry no
// frame.
package frame
