package devicesim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/agent/coap"
	"github.com/fleetvault/fleetvault/tagmatch"
	"gopkg.in/yaml.v3"
)

// DeviceRecord is one entry of a device list: what a server imports to know a
// simulated device (`fleetvault sim --devices-out`). The file is a YAML list:
//
//   - id: home0001-climate
//     password: 9f0c...            # its MQTT password
//     identifier: mqtt://home0001-climate  # or coaps://127.0.0.1:40001
//     coap_key: 5d1e...            # a coaps:// device's DTLS pre-shared key (hex)
//     tag: [{key: manufacturer, value: Acme Corp.}, {key: zone, value: South}]
//     group: new-homes
//     type: climate
//     transport: mqtt
//     site: home0001
//     reference: false
type DeviceRecord struct {
	ID         string       `yaml:"id"`
	Password   string       `yaml:"password"`
	Identifier string       `yaml:"identifier"`
	CoAPKey    string       `yaml:"coap_key,omitempty"`
	Tag        tagmatch.Tag `yaml:"tag"`
	Group      string       `yaml:"group"`
	Type       string       `yaml:"type"`
	Transport  string       `yaml:"transport"`
	Site       string       `yaml:"site,omitempty"`
	Reference  bool         `yaml:"reference"`
}

// DeviceList turns devices into the records of a device list.
func DeviceList(devs []DeviceInfo) []DeviceRecord {
	out := make([]DeviceRecord, len(devs))
	for i, d := range devs {
		out[i] = DeviceRecord{ID: d.ID, Password: d.Password, Identifier: BaseAddress(d.Identifier), Tag: d.Tag,
			Group: d.Group, Type: d.Type, Transport: d.Transport, Site: d.Site, Reference: d.Reference}
		if d.CoAPKey != nil {
			out[i].CoAPKey = coap.FormatKey(d.CoAPKey)
		}
	}
	return out
}

// WriteDeviceList writes devices as a device list, with a comment naming the fleet.
func WriteDeviceList(w io.Writer, fleet string, seed uint64, devs []DeviceInfo) error {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Devices of fleet %s (seed %d), written by fleetvault sim: secrets inside, keep private.\n", fleet, seed)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(DeviceList(devs)); err != nil {
		return fmt.Errorf("devicesim: encode device list: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("devicesim: encode device list: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// ParseDeviceList reads a device list; name is used in errors, which give the
// entry and what is wrong with it.
func ParseDeviceList(name string, data []byte) ([]DeviceRecord, error) {
	if len(data) > 256<<20 {
		return nil, fmt.Errorf("devicesim: device list %s: %d bytes exceeds 256 MiB", name, len(data))
	}
	var recs []DeviceRecord
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&recs); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("devicesim: device list %s: expected a list of {id, password, identifier, tag, group, type}: %s",
			name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	seen := make(map[string]int, len(recs))
	for i, r := range recs {
		where := fmt.Sprintf("devicesim: device list %s: entry %d", name, i+1)
		if err := agent.CheckDeviceID(r.ID); err != nil {
			return nil, fmt.Errorf("%s: id: %w", where, err)
		}
		if j, dup := seen[r.ID]; dup {
			return nil, fmt.Errorf("%s: id %q is also entry %d", where, r.ID, j)
		}
		seen[r.ID] = i + 1
		if err := checkBaseAddress(r.Identifier); err != nil {
			return nil, fmt.Errorf("%s (%s): identifier %q: %w", where, r.ID, r.Identifier, err)
		}
		if r.Transport != TransportMQTT && r.Transport != TransportCoAP {
			return nil, fmt.Errorf("%s (%s): transport %q: expected mqtt or coap", where, r.ID, r.Transport)
		}
		if r.Transport == TransportMQTT && r.Password == "" {
			return nil, fmt.Errorf("%s (%s): an MQTT device needs a password", where, r.ID)
		}
		if _, err := coap.KeyFor(r.Identifier, r.CoAPKey); err != nil {
			return nil, fmt.Errorf("%s (%s): %w", where, r.ID, err)
		}
	}
	return recs, nil
}

// checkBaseAddress checks scheme://host[:port], the form BaseAddress writes.
func checkBaseAddress(s string) error {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || (scheme != "mqtt" && scheme != "coap" && scheme != "coaps") {
		return errors.New("expected mqtt://<device id>, coaps://<host>:<port> or coap://<host>:<port>")
	}
	if rest == "" || strings.ContainsAny(rest, "?/#+ ") {
		return errors.New("expected a host (and port) after the scheme, nothing else")
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.HasSuffix(rest, "]") {
		if p, err := strconv.Atoi(rest[i+1:]); err != nil || p < 1 || p > 65535 {
			if !strings.HasPrefix(rest, "[") {
				return fmt.Errorf("port %q: expected 1 to 65535", rest[i+1:])
			}
		}
	}
	return nil
}
