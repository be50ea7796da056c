package coap

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/pion/dtls/v3"
)

// DTLS with a pre-shared key per device (docs/spec/agent-coap.md,
// "Security"): the PSK identity is the device's id, the key 16 to 64 bytes,
// written as hexadecimal in files and flags.

// DefaultSecurePort is the port of a coaps:// identifier that names none.
const DefaultSecurePort = 5684

// Bounds of a pre-shared key, in bytes.
const (
	MinKeyBytes = 16
	MaxKeyBytes = 64
)

// cipherSuites are the suites both sides offer, in order of preference:
// TLS_PSK_WITH_AES_128_CCM_8 is the one RFC 7252 section 9.1.3.1 makes
// mandatory; GCM is accepted for the TLS libraries that leave CCM_8 out.
var cipherSuites = []dtls.CipherSuiteID{
	dtls.TLS_PSK_WITH_AES_128_CCM_8,
	dtls.TLS_PSK_WITH_AES_128_GCM_SHA256,
}

// Errors of the secure transport, checked with errors.Is.
var (
	// ErrInsecure: plain CoAP (a coap:// identifier) to or from a party that
	// requires DTLS.
	ErrInsecure = errors.New("plain CoAP refused: DTLS (coaps://) is required")
	// ErrNoKey: the server holds no pre-shared key for the device.
	ErrNoKey = errors.New("no CoAP pre-shared key for the device")
	// ErrHandshake: the DTLS handshake failed (a wrong key or identity, or
	// not a coaps endpoint).
	ErrHandshake = errors.New("DTLS handshake failed")
)

// ParseKey decodes a pre-shared key from its text form: hexadecimal, 32 to
// 128 digits (16 to 64 bytes), case-insensitive.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("CoAP pre-shared key: not hexadecimal: %w", err)
	}
	if err := CheckKey(b); err != nil {
		return nil, err
	}
	return b, nil
}

// FormatKey is the text form of a pre-shared key: lower-case hexadecimal.
func FormatKey(key []byte) string { return hex.EncodeToString(key) }

// CheckKey checks a pre-shared key's length.
func CheckKey(key []byte) error {
	if len(key) < MinKeyBytes || len(key) > MaxKeyBytes {
		return fmt.Errorf("CoAP pre-shared key of %d bytes: expected %d to %d bytes (%d to %d hexadecimal digits)",
			len(key), MinKeyBytes, MaxKeyBytes, 2*MinKeyBytes, 2*MaxKeyBytes)
	}
	return nil
}

// KeyFunc returns the pre-shared key of a device, found by its id (the PSK
// identity). An unknown device, or one without a key, is a wrapped ErrNoKey.
// It is called once per DTLS handshake and must be safe for concurrent use.
type KeyFunc func(ctx context.Context, device string) ([]byte, error)

// deviceDTLS is a device's side of the handshake: it accepts only its own
// id as the PSK identity, and names itself in the identity hint.
func deviceDTLS(device string, key []byte) []dtls.ServerOption {
	return []dtls.ServerOption{
		dtls.WithPSK(devicePSK(device, key)),
		dtls.WithPSKIdentityHint([]byte(device)),
		dtls.WithCipherSuites(cipherSuites...),
		dtls.WithExtendedMasterSecret(dtls.RequestExtendedMasterSecret),
	}
}

// devicePSK is a device's choice of key for the PSK identity a client
// sends: its key for its own id, a refusal for any other identity.
func devicePSK(device string, key []byte) dtls.PSKCallback {
	return func(identity []byte) ([]byte, error) {
		if string(identity) != device {
			return nil, fmt.Errorf("PSK identity %q is not this device (%s)", identity, device)
		}
		return key, nil
	}
}

// serverDTLS is the server's side of the handshake with device: identity
// the device's id; a device that names another id in its hint is refused.
func serverDTLS(device string, key []byte) []dtls.ClientOption {
	return []dtls.ClientOption{
		dtls.WithPSK(func(hint []byte) ([]byte, error) {
			if len(hint) > 0 && string(hint) != device {
				return nil, fmt.Errorf("the device says it is %q, not %s", hint, device)
			}
			return key, nil
		}),
		dtls.WithPSKIdentityHint([]byte(device)),
		dtls.WithCipherSuites(cipherSuites...),
		dtls.WithExtendedMasterSecret(dtls.RequestExtendedMasterSecret),
	}
}

// checkIdentity checks that a device id can be a PSK identity.
func checkIdentity(device string) error {
	if err := agent.CheckDeviceID(device); err != nil {
		return fmt.Errorf("PSK identity: %w", err)
	}
	return nil
}

// KeyFor checks the pre-shared key given for a device (its text form, "" for
// none) against the device's identifier, as a device list or an import gives
// them: a coaps:// device needs a key, and a key is for coaps:// devices
// only. It returns the key's bytes (nil without one).
func KeyFor(identifier, key string) ([]byte, error) {
	secure := strings.HasPrefix(identifier, "coaps://")
	switch {
	case secure && key == "":
		return nil, fmt.Errorf("%s needs a CoAP pre-shared key (coap_key: %d to %d hexadecimal digits)", identifier, 2*MinKeyBytes, 2*MaxKeyBytes)
	case key == "":
		return nil, nil
	case !secure:
		return nil, fmt.Errorf("a coap_key is for coaps:// devices; the identifier is %q", identifier)
	}
	b, err := ParseKey(key)
	if err != nil {
		return nil, fmt.Errorf("coap_key: %w", err)
	}
	return b, nil
}
