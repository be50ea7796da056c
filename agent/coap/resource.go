package coap

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/identifiers"
	"github.com/plgd-dev/go-coap/v3/message/codes"
)

// DefaultPort is the UDP port of a device whose identifier names none
// (RFC 7252 section 6.1).
const DefaultPort = 5683

// The resources a device serves (docs/spec/agent-coap.md).
const (
	PathTag      = "/fleetvault/v1/tag"          // GET: READ:SETTINGS?TAG
	PathSettings = "/fleetvault/v1/settings"     // GET: READ:SETTINGS?SETTINGS; PUT: WRITE:SETTINGS?TAG+SETTINGS
	PathBoth     = "/fleetvault/v1/tag+settings" // GET: READ:SETTINGS?TAG+SETTINGS, the tag and the settings at once
	PathRequest  = "/fleetvault/v1/request"      // POST: any other identifier, the full Request as payload
)

// Uri-Query keys of a GET. They carry what a Request carries besides
// settings, so that a plain CoAP client can probe a device.
const (
	QueryVersion = "v"
	QueryID      = "id"
	QueryIdent   = "ident"
	QueryJob     = "job"
)

// Limits of the query mapping.
const (
	maxQueryOptions = 16  // Uri-Query options a device reads in one GET
	maxQueryOption  = 255 // bytes in one Uri-Query option (RFC 7252 section 5.10)
)

// errQuery is wrapped by every query-mapping error.
var errQuery = errors.New("bad uri-query")

// route is where a request goes: the CoAP method and the resource path.
type route struct {
	method codes.Code
	path   string
}

// routeFor maps an identifier to the resource that serves it. Anything but the
// settings identifiers goes, whole, to PathRequest, so a device answers
// with its own refusal exactly as it would over MQTT.
func routeFor(id identifiers.ID) route {
	if strings.EqualFold(id.Param(0), agent.ParamSettings) {
		read := id.Method == agent.MethodRead
		switch {
		case read && strings.EqualFold(id.Location, agent.LocTag):
			return route{codes.GET, PathTag}
		case read && strings.EqualFold(id.Location, agent.LocSettings):
			return route{codes.GET, PathSettings}
		case read && strings.EqualFold(id.Location, agent.LocWrite):
			return route{codes.GET, PathBoth}
		case id.Method == agent.MethodWrite && strings.EqualFold(id.Location, agent.LocWrite):
			return route{codes.PUT, PathSettings}
		}
	}
	return route{codes.POST, PathRequest}
}

// encodeQuery returns the Uri-Query options of a GET for req.
func encodeQuery(req *agent.Request) ([]string, error) {
	q := []string{
		QueryVersion + "=" + strconv.FormatUint(req.V, 10),
		QueryID + "=" + req.ID,
		QueryIdent + "=" + req.Ident,
	}
	if req.Job != "" {
		q = append(q, QueryJob+"="+req.Job)
	}
	for _, o := range q {
		if len(o) > maxQueryOption {
			return nil, fmt.Errorf("%w: option %.20q... is %d bytes, over the %d a Uri-Query option holds", errQuery, o, len(o), maxQueryOption)
		}
	}
	return q, nil
}

// decodeQuery builds a Request from the Uri-Query options of a GET. Unknown
// keys are ignored (as unknown CBOR fields are); a repeated known key, a
// missing version, id or identifier, or a version that is not a number is an
// error. What it returns is not yet checked against the resource.
func decodeQuery(options []string) (*agent.Request, error) {
	if len(options) > maxQueryOptions {
		return nil, fmt.Errorf("%w: %d options, at most %d", errQuery, len(options), maxQueryOptions)
	}
	var req agent.Request
	seen := map[string]bool{}
	for _, o := range options {
		key, value, _ := strings.Cut(o, "=")
		switch key {
		case QueryVersion, QueryID, QueryIdent, QueryJob:
		default:
			continue
		}
		if seen[key] {
			return nil, fmt.Errorf("%w: key %q given twice", errQuery, key)
		}
		seen[key] = true
		switch key {
		case QueryVersion:
			v, err := strconv.ParseUint(value, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%w: version %q is not a number", errQuery, value)
			}
			req.V = v
		case QueryID:
			req.ID = value
		case QueryIdent:
			req.Ident = value
		case QueryJob:
			req.Job = value
		}
	}
	for _, k := range []string{QueryVersion, QueryID, QueryIdent} {
		if !seen[k] {
			return &req, fmt.Errorf("%w: key %q missing", errQuery, k)
		}
	}
	return &req, nil
}

// checkRoute reports, as a refusal message, why ident may not be served at
// (method, path), or "" when it may.
func checkRoute(ident string, method codes.Code, path string) string {
	id, err := identifiers.Parse(ident)
	if err != nil {
		return "" // the Handler refuses it with the parse error
	}
	if r := routeFor(id); r.method != method || r.path != path {
		return fmt.Sprintf("identifier %s is served by %v %s, not %v %s", ident, r.method, r.path, method, path)
	}
	return ""
}

// responseCode is the CoAP response code that carries a Response: a success
// code for the method, or the refusal code for its error.
func responseCode(method codes.Code, resp *agent.Response) codes.Code {
	if resp.Err == nil {
		if method == codes.GET {
			return codes.Content
		}
		return codes.Changed
	}
	return refusalCode(resp.Err.Code)
}

// refusalCode maps an agent error code to a CoAP response code
// (docs/spec/agent-coap.md, "Refusals").
func refusalCode(code string) codes.Code {
	switch code {
	case agent.CodeBadRequest, agent.CodeVersion, agent.CodeHashMismatch:
		return codes.BadRequest
	case agent.CodeTooLarge:
		return codes.RequestEntityTooLarge
	case agent.CodeNotAddressee:
		return codes.NotFound
	case agent.CodeUnsupported:
		return codes.NotImplemented
	case agent.CodeRejected:
		return codes.UnprocessableEntity
	case agent.CodeConflict:
		return codes.Conflict
	default:
		return codes.InternalServerError
	}
}
