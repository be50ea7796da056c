package coap

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"testing"
	"time"
)

const securityVectorsPath = "../../docs/spec/vectors/coap-security.json"

// securityVectors is docs/spec/vectors/coap-security.json.
type securityVectors struct {
	PSKIdentity []struct {
		Device      string `json:"device"`
		IdentityHex string `json:"identity_hex"`
	} `json:"psk_identity"`
	Keys []struct {
		Name  string `json:"name"`
		Text  string `json:"text"`
		Valid bool   `json:"valid"`
		Bytes int    `json:"bytes"`
	} `json:"keys"`
	CipherSuites []struct {
		Name     string `json:"name"`
		ID       string `json:"id"`
		Required bool   `json:"required"`
	} `json:"cipher_suites"`
	PlainRefusal []struct {
		Name       string `json:"name"`
		RequestHex string `json:"request_hex"`
		AnswerHex  string `json:"answer_hex"`
	} `json:"plain_refusal"`
}

func loadSecurityVectors(t *testing.T) securityVectors {
	t.Helper()
	b, err := os.ReadFile(securityVectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var v securityVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", securityVectorsPath, err)
	}
	if len(v.Keys) == 0 || len(v.PSKIdentity) == 0 || len(v.CipherSuites) == 0 || len(v.PlainRefusal) == 0 {
		t.Fatalf("%s: a section is empty", securityVectorsPath)
	}
	return v
}

func TestSecurityVectorsKeys(t *testing.T) {
	for _, v := range loadSecurityVectors(t).Keys {
		t.Run(v.Name, func(t *testing.T) {
			key, err := ParseKey(v.Text)
			if !v.Valid {
				if err == nil {
					t.Fatalf("ParseKey(%q) accepted %d bytes; the spec refuses it", v.Text, len(key))
				}
				return
			}
			if err != nil || len(key) != v.Bytes {
				t.Fatalf("ParseKey(%q) = %d bytes, %v; want %d bytes", v.Text, len(key), err, v.Bytes)
			}
		})
	}
}

func TestSecurityVectorsIdentity(t *testing.T) {
	for _, v := range loadSecurityVectors(t).PSKIdentity {
		t.Run(v.Device, func(t *testing.T) {
			want, err := hex.DecodeString(v.IdentityHex)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkIdentity(v.Device); err != nil {
				t.Fatal(err)
			}
			psk := devicePSK(v.Device, testKey)
			if key, err := psk(want); err != nil || !bytes.Equal(key, testKey) {
				t.Fatalf("device %s refuses the identity %x: %v", v.Device, want, err)
			}
			for _, other := range [][]byte{append(want, 0), want[:len(want)-1], bytes.ToUpper(want)} {
				if _, err := psk(other); err == nil {
					t.Errorf("device %s accepts the identity %x", v.Device, other)
				}
			}
		})
	}
}

func TestSecurityVectorsCipherSuites(t *testing.T) {
	suites := loadSecurityVectors(t).CipherSuites
	if len(suites) != len(cipherSuites) {
		t.Fatalf("the spec lists %d suites, the implementation offers %d", len(suites), len(cipherSuites))
	}
	for i, s := range suites {
		if got := fmt.Sprintf("0x%04X", uint16(cipherSuites[i])); got != s.ID {
			t.Errorf("suite %d: implementation offers %s, the spec says %s (%s)", i, got, s.ID, s.Name)
		}
		if cipherSuites[i].String() != s.Name {
			t.Errorf("suite %d: %s, the spec says %s", i, cipherSuites[i], s.Name)
		}
	}
	if !suites[0].Required {
		t.Error("the first suite is the required one")
	}
}

// TestSecurityVectorsPlainRefusal sends each plain datagram to a device that
// requires DTLS, then a ping: the ping's Reset comes right after the
// vector's answer, or first when the vector expects none.
func TestSecurityVectorsPlainRefusal(t *testing.T) {
	d := startSecureDevice(t, testKey)
	conn, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: d.port})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ping, pingReset := []byte{0x40, 0, 0xfe, 0xed}, []byte{0x70, 0, 0xfe, 0xed}
	read := func() []byte {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no answer from the device: %v", err)
		}
		return buf[:n]
	}
	for _, v := range loadSecurityVectors(t).PlainRefusal {
		t.Run(v.Name, func(t *testing.T) {
			req, _ := hex.DecodeString(v.RequestHex)
			want, _ := hex.DecodeString(v.AnswerHex)
			if _, err := conn.Write(req); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Write(ping); err != nil {
				t.Fatal(err)
			}
			if len(want) > 0 {
				if got := read(); !bytes.Equal(got, want) {
					t.Fatalf("answer %x, want %x", got, want)
				}
			}
			if got := read(); !bytes.Equal(got, pingReset) {
				t.Fatalf("answer %x, want the ping's Reset %x", got, pingReset)
			}
		})
	}
	if st := d.srv.Stats(); st.Answered != 0 {
		t.Fatalf("device stats %+v: a plain request was served", st)
	}
}
