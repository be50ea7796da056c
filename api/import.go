package api

import (
	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/service"

	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/fleetvault/fleetvault/tagmatch"
)

// Import formats, chosen by the request's Content-Type.
const (
	contentCSV  = "text/csv"
	contentYAML = "application/yaml"
	contentJSON = "application/json"
)

func (s *API) handleImportDevices(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		return &apiError{status: http.StatusUnsupportedMediaType, msg: fmt.Sprintf("Content-Type %q: send text/csv, application/yaml or application/json", ct)}
	}
	b, err := readBody(w, r, maxImportBody)
	if err != nil {
		return err
	}
	var nds []apiclient.NewDevice
	switch mt {
	case contentCSV, "application/csv":
		nds, err = ParseDevicesCSV(b)
	case contentYAML, "application/x-yaml", "text/yaml", "text/x-yaml":
		nds, err = ParseDevicesYAML(b)
	case contentJSON:
		err = decodeStrict(b, &nds)
	default:
		return &apiError{status: http.StatusUnsupportedMediaType, msg: fmt.Sprintf("Content-Type %q: send text/csv, application/yaml or application/json", mt)}
	}
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			return err
		}
		return errBadRequest("%v", err)
	}
	res, err := ss.AddDevices(r.Context(), nds, r.URL.Query().Get("replace") == "true")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, res)
	return nil
}

// csvColumns are the columns a device CSV may have; id is required.
var csvColumns = []string{"id", "password", "identifier", "group", "tag", "domain", "category", "owner", "type", "coap_key"}

// ParseDevicesCSV reads a device list as CSV with a header line naming its
// columns (id, password, identifier, group, tag, and optionally domain,
// category, owner, type; any order). A tag is in the `key=value; key=value`
// form. Errors name the line and column.
func ParseDevicesCSV(b []byte) ([]apiclient.NewDevice, error) {
	cr := csv.NewReader(bytes.NewReader(b))
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("CSV: empty; the first line must name the columns, e.g. id,password,identifier,group,tag")
	}
	if err != nil {
		return nil, fmt.Errorf("CSV: %v", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !contains(csvColumns, h) {
			return nil, fmt.Errorf("CSV line 1: unknown column %q; the columns are %s", h, strings.Join(csvColumns, ", "))
		}
		if _, dup := col[h]; dup {
			return nil, fmt.Errorf("CSV line 1: column %q appears twice", h)
		}
		col[h] = i
	}
	if _, ok := col["id"]; !ok {
		return nil, errors.New("CSV line 1: no id column; the first line must name the columns, e.g. id,password,identifier,group,tag")
	}
	var out []apiclient.NewDevice
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("CSV: %v", err)
		}
		line, _ := cr.FieldPos(0)
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		nd := apiclient.NewDevice{ID: get("id"), Password: get("password"), Identifier: get("identifier"), Group: get("group"),
			Domain: get("domain"), Category: get("category"), Owner: get("owner"), Type: get("type"), CoAPKey: get("coap_key")}
		if nd.ID == "" {
			return nil, fmt.Errorf("CSV line %d: the id column is empty", line)
		}
		if t := get("tag"); t != "" {
			if nd.Tag, err = tagmatch.ParseKV(t); err != nil {
				return nil, fmt.Errorf("CSV line %d: column tag: %v", line, err)
			}
		}
		out = append(out, nd)
	}
	return out, nil
}

// yamlDevice is one entry of a YAML device list, as `fleetvault sim
// --devices-out` writes it. Site, transport and reference are written by the
// simulator and ignored here.
type yamlDevice struct {
	ID         string    `yaml:"id"`
	Password   string    `yaml:"password"`
	Identifier string    `yaml:"identifier"`
	Tag        yaml.Node `yaml:"tag"`
	Group      string    `yaml:"group"`
	Type       string    `yaml:"type"`
	Domain     string    `yaml:"domain"`
	Category   string    `yaml:"category"`
	Owner      string    `yaml:"owner"`
	Site       string    `yaml:"site"`
	Transport  string    `yaml:"transport"`
	Reference  bool      `yaml:"reference"`
	CoAPKey    string    `yaml:"coap_key"`
}

// ParseDevicesYAML reads a device list as YAML: a sequence of devices, or a
// mapping with a devices: sequence. A tag is a `key=value; ...` string, a
// mapping (order kept) or a sequence of {key, value}. Errors name the line.
func ParseDevicesYAML(b []byte) ([]apiclient.NewDevice, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("YAML: %v", err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, errors.New("YAML: empty; send a list of devices ({id, password, identifier, tag, group})")
	}
	list := doc.Content[0]
	if list.Kind == yaml.MappingNode {
		var found *yaml.Node
		for i := 0; i+1 < len(list.Content); i += 2 {
			if list.Content[i].Value == "devices" {
				found = list.Content[i+1]
			} else {
				return nil, fmt.Errorf("YAML line %d: unknown key %q; the document is a list of devices or {devices: [...]}", list.Content[i].Line, list.Content[i].Value)
			}
		}
		if found == nil {
			return nil, errors.New("YAML: no devices: list")
		}
		list = found
	}
	if list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("YAML line %d: expected a list of devices", list.Line)
	}
	out := make([]apiclient.NewDevice, 0, len(list.Content))
	for _, n := range list.Content {
		nd, err := decodeYAMLDevice(n)
		if err != nil {
			return nil, err
		}
		out = append(out, nd)
	}
	return out, nil
}

func decodeYAMLDevice(n *yaml.Node) (apiclient.NewDevice, error) {
	if n.Kind != yaml.MappingNode {
		return apiclient.NewDevice{}, fmt.Errorf("YAML line %d: a device must be a mapping with id, password, identifier, tag, group", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i].Value; !contains(yamlDeviceKeys, k) {
			return apiclient.NewDevice{}, fmt.Errorf("YAML line %d: unknown device key %q; the keys are %s", n.Content[i].Line, k, strings.Join(yamlDeviceKeys, ", "))
		}
	}
	var yd yamlDevice
	if err := n.Decode(&yd); err != nil {
		return apiclient.NewDevice{}, fmt.Errorf("YAML line %d: %v", n.Line, err)
	}
	if yd.ID == "" {
		return apiclient.NewDevice{}, fmt.Errorf("YAML line %d: the device has no id", n.Line)
	}
	tag, err := yamlTag(&yd.Tag)
	if err != nil {
		return apiclient.NewDevice{}, fmt.Errorf("YAML line %d: device %s: tag: %v", yd.Tag.Line, yd.ID, err)
	}
	return apiclient.NewDevice{ID: yd.ID, Password: yd.Password, Identifier: yd.Identifier, Tag: tag, Group: yd.Group,
		Type: yd.Type, Domain: yd.Domain, Category: yd.Category, Owner: yd.Owner, CoAPKey: yd.CoAPKey}, nil
}

var yamlDeviceKeys = []string{"id", "password", "identifier", "tag", "group", "type", "domain", "category", "owner", "site", "transport", "reference", "coap_key"}

// yamlTag decodes a tag in any of its YAML forms.
func yamlTag(n *yaml.Node) (tagmatch.Tag, error) {
	switch n.Kind {
	case 0:
		return nil, nil
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return nil, nil
		}
		return tagmatch.ParseKV(n.Value)
	case yaml.MappingNode:
		var t tagmatch.Tag
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("the value of %q must be text", k.Value)
			}
			t = append(t, tagmatch.Attr{Key: k.Value, Value: v.Value})
		}
		return t.Normalize()
	case yaml.SequenceNode:
		var attrs []tagmatch.Attr
		if err := n.Decode(&attrs); err != nil {
			return nil, fmt.Errorf("a list tag holds {key, value} entries: %v", err)
		}
		return tagmatch.Tag(attrs).Normalize()
	}
	return nil, errors.New("a tag is a \"key=value; ...\" string, a mapping, or a list of {key, value}")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
