package agent

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"

	"github.com/fleetvault/fleetvault/tagmatch"
	"github.com/fxamacker/cbor/v2"
)

// Version is the protocol version this package speaks. Every message carries it.
const Version = 1

// Limits on what a decoder accepts. Anything larger is refused before it is decoded.
const (
	MaxMessageBytes  = 1 << 20 // one message, settings included
	MaxSettingsBytes = 512 << 10
	MaxNesting       = 16
	MaxMapPairs      = 4096
	MaxArrayElements = 4096
)

// Methods and locations of the identifiers this protocol carries.
const (
	MethodRead    = "READ"
	MethodWrite   = "WRITE"
	ParamSettings = "SETTINGS"
	LocTag        = "TAG"          // READ:SETTINGS?TAG           the device's tag
	LocSettings   = "SETTINGS"     // READ:SETTINGS?SETTINGS      its settings and their hash
	LocWrite      = "TAG+SETTINGS" // WRITE:SETTINGS?TAG+SETTINGS apply settings; READ:SETTINGS?TAG+SETTINGS reads both
)

// Capabilities a device may announce.
const (
	CapReadTag       = "read-tag"
	CapReadSettings  = "read-settings"
	CapWriteSettings = "write-settings"
	CapIdempotentJob = "idempotent-job" // the same job id twice is a no-op success
)

// Error codes carried in Response.Err.Code. They are part of the standard.
const (
	CodeBadRequest   = "bad-request"   // malformed, undecodable or incomplete request
	CodeTooLarge     = "too-large"     // over a decoder limit
	CodeNotAddressee = "not-addressee" // the identifier names another device
	CodeUnsupported  = "unsupported"   // a method or location this device does not serve
	CodeVersion      = "version"       // a protocol version this device does not speak
	CodeHashMismatch = "hash-mismatch" // the settings do not hash to the request's hash
	CodeRejected     = "rejected"      // the device refused the settings (invalid for it)
	CodeConflict     = "conflict"      // the same job already wrote different settings
	CodeInternal     = "internal"      // the device failed to read or apply
)

// Request is what the server sends a device.
type Request struct {
	V        uint64 `cbor:"v"`
	ID       string `cbor:"id"`                 // correlation id, unique among the server's outstanding requests
	Ident    string `cbor:"ident"`              // the identifier, e.g. mqtt://home1-thermo?READ:SETTINGS?TAG
	Job      string `cbor:"job,omitempty"`      // the job id; a WRITE must carry one
	Settings []byte `cbor:"settings,omitempty"` // WRITE: the settings document, deterministic CBOR
	Hash     []byte `cbor:"hash,omitempty"`     // WRITE: SHA-256 of Settings
}

// Response is what a device answers.
type Response struct {
	V        uint64       `cbor:"v"`
	ID       string       `cbor:"id"`                 // the request's correlation id ("" for a presence announcement)
	Device   string       `cbor:"dev"`                // the device's id
	Caps     []string     `cbor:"caps,omitempty"`     // the device's capabilities
	Tag      tagmatch.Tag `cbor:"tag,omitempty"`      // READ ...?TAG
	Settings []byte       `cbor:"settings,omitempty"` // READ ...?SETTINGS: deterministic CBOR
	Hash     []byte       `cbor:"hash,omitempty"`     // SHA-256 of the settings read, or of those applied
	Err      *Error       `cbor:"err,omitempty"`
}

// Error is a device's refusal or failure, with a code from the list above.
type Error struct {
	Code    string `cbor:"code"`
	Message string `cbor:"msg,omitempty"`
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "device error " + e.Code
	}
	return fmt.Sprintf("device error %s: %s", e.Code, e.Message)
}

// ErrMalformed is returned, wrapped, for any message or settings document that
// cannot be decoded within the limits.
var ErrMalformed = errors.New("malformed message")

var (
	encMode cbor.EncMode // core deterministic encoding (RFC 8949 section 4.2.1)
	decMode cbor.DecMode // limits; unknown fields ignored
)

func init() {
	var err error
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err) // static options; cannot fail
	}
	decMode, err = cbor.DecOptions{
		MaxNestedLevels:  MaxNesting,
		MaxMapPairs:      MaxMapPairs,
		MaxArrayElements: MaxArrayElements,
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		// Keys are exact: "ID" is an unknown key, not the correlation id.
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
		// Settings are maps from text keys at every level: nested maps decode
		// as map[string]any (so they render as JSON), and a map with another
		// kind of key is refused as malformed.
		DefaultMapType: reflect.TypeOf(map[string]any(nil)),
	}.DecMode()
	if err != nil {
		panic(err) // static options; cannot fail
	}
}

// EncodeRequest encodes r, setting its version.
func EncodeRequest(r *Request) ([]byte, error) {
	r.V = Version
	return encMode.Marshal(r)
}

// EncodeResponse encodes r, setting its version.
func EncodeResponse(r *Response) ([]byte, error) {
	r.V = Version
	return encMode.Marshal(r)
}

// DecodeRequest decodes b within the limits. Unknown fields are ignored.
func DecodeRequest(b []byte) (*Request, error) {
	if len(b) > MaxMessageBytes {
		return nil, fmt.Errorf("%w: request of %d bytes exceeds %d", ErrMalformed, len(b), MaxMessageBytes)
	}
	var r Request
	if err := decMode.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: request: %v", ErrMalformed, err)
	}
	return &r, nil
}

// DecodeResponse decodes b within the limits. Unknown fields are ignored.
func DecodeResponse(b []byte) (*Response, error) {
	if len(b) > MaxMessageBytes {
		return nil, fmt.Errorf("%w: response of %d bytes exceeds %d", ErrMalformed, len(b), MaxMessageBytes)
	}
	var r Response
	if err := decMode.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: response: %v", ErrMalformed, err)
	}
	return &r, nil
}

// Settings is a settings document: a CBOR map from text keys to values.
type Settings = map[string]any

// EncodeSettings returns the deterministic encoding of s: equal settings give
// equal bytes, and so equal hashes.
func EncodeSettings(s Settings) ([]byte, error) {
	if s == nil {
		s = Settings{}
	}
	b, err := encMode.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode settings: %w", err)
	}
	if len(b) > MaxSettingsBytes {
		return nil, fmt.Errorf("settings of %d bytes exceed the limit of %d", len(b), MaxSettingsBytes)
	}
	return b, nil
}

// DecodeSettings decodes a settings document within the limits.
func DecodeSettings(b []byte) (Settings, error) {
	if len(b) > MaxSettingsBytes {
		return nil, fmt.Errorf("%w: settings of %d bytes exceed %d", ErrMalformed, len(b), MaxSettingsBytes)
	}
	var s Settings
	if err := decMode.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%w: settings: %v", ErrMalformed, err)
	}
	if s == nil {
		return nil, fmt.Errorf("%w: settings: not a map", ErrMalformed)
	}
	return s, nil
}

// CanonicalSettings checks that b is a settings document and returns its
// deterministic encoding (b itself when it already is).
func CanonicalSettings(b []byte) ([]byte, error) {
	s, err := DecodeSettings(b)
	if err != nil {
		return nil, err
	}
	c, err := EncodeSettings(s)
	if err != nil {
		return nil, err
	}
	if bytes.Equal(c, b) {
		return b, nil
	}
	return c, nil
}

// Hash returns the SHA-256 of a settings document's bytes.
func Hash(settings []byte) []byte {
	h := sha256.Sum256(settings)
	return h[:]
}
