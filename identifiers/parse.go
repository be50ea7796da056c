package identifiers

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxLength is the longest identifier, in bytes, that Parse accepts.
const MaxLength = 4096

// Limits on the parts of an identifier.
const (
	maxMethod = 64  // bytes of a method name
	maxHost   = 253 // bytes of a host name, as in DNS
	maxLabel  = 63  // bytes of one dot-separated label of a host name
)

// Schemes are the transport prefixes an identifier may carry, in canonical
// (lower-case) spelling.
var schemes = [...]string{"mqtt", "mqtts", "coap", "coaps"}

// SyntaxError is the error Parse returns for a malformed identifier.
type SyntaxError struct {
	Input   string // the identifier as given
	Column  int    // 1-based position of the problem, counted in Unicode code points
	Message string // what was expected there, or what is wrong
}

// Error reads like: identifier "10.1.1.1:?READ?TAG" column 10: expected a port number (1-65535) after ':'.
func (e *SyntaxError) Error() string {
	in := e.Input
	if utf8.RuneCountInString(in) > 120 {
		r := []rune(in)
		in = string(r[:117]) + "..."
	}
	return fmt.Sprintf("identifier %q column %d: %s", in, e.Column, e.Message)
}

// parser holds the input and turns byte offsets into rune columns for errors.
type parser struct{ s string }

func (p parser) errAt(off int, format string, args ...any) *SyntaxError {
	if off > len(p.s) {
		off = len(p.s)
	}
	return &SyntaxError{Input: p.s, Column: utf8.RuneCountInString(p.s[:off]) + 1, Message: fmt.Sprintf(format, args...)}
}

// Parse reads an identifier:
//
//	[scheme "://"] address [":" port] "?" method [":" params] "?" location
//
// and the legacy settings form in which the location follows the last ':'
// of the params ("10.10.33.33:7890?READ:SETTINGS:TAG"). The result is in
// canonical form: scheme lower case, method upper case, IPv6 addresses
// compressed and without brackets; params and location are kept as written.
// A malformed identifier gives a *SyntaxError naming the column.
func Parse(s string) (ID, error) {
	p := parser{s}
	if err := p.checkText(); err != nil {
		return ID{}, err
	}
	var id ID
	pos, err := p.scheme(&id)
	if err != nil {
		return ID{}, err
	}
	if pos, err = p.address(&id, pos); err != nil {
		return ID{}, err
	}
	if pos, err = p.port(&id, pos); err != nil {
		return ID{}, err
	}
	if pos, err = p.method(&id, pos); err != nil {
		return ID{}, err
	}
	if err := p.paramsAndLocation(&id, pos); err != nil {
		return ID{}, err
	}
	return id, nil
}

// MustParse is Parse for identifiers known to be valid, such as constants in
// tests and examples; it panics on a malformed one.
func MustParse(s string) ID {
	id, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return id
}

// checkText refuses what no part of an identifier may hold: invalid UTF-8,
// control characters, surrounding white space, and excessive length.
func (p parser) checkText() error {
	s := p.s
	if s == "" {
		return p.errAt(0, "expected an identifier, got an empty string")
	}
	if len(s) > MaxLength {
		return p.errAt(MaxLength, "identifier is longer than %d bytes", MaxLength)
	}
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			return p.errAt(i, "invalid UTF-8")
		case unicode.IsControl(r):
			return p.errAt(i, "control character %U is not allowed", r)
		}
	}
	if r, _ := utf8.DecodeRuneInString(s); unicode.IsSpace(r) {
		return p.errAt(0, "identifier begins with white space")
	}
	if r, n := utf8.DecodeLastRuneInString(s); unicode.IsSpace(r) {
		return p.errAt(len(s)-n, "identifier ends with white space (spaces are allowed inside params and location, not at the end)")
	}
	return nil
}

// scheme reads an optional "name://" prefix.
func (p parser) scheme(id *ID) (int, error) {
	s := p.s
	i := 0
	for i < len(s) && (isLetter(s[i]) || i > 0 && (isDigit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.')) {
		i++
	}
	if i == 0 || !strings.HasPrefix(s[i:], "://") {
		return 0, nil
	}
	name := strings.ToLower(s[:i])
	for _, sc := range schemes {
		if name == sc {
			id.Scheme = sc
			return i + 3, nil
		}
	}
	return 0, p.errAt(0, "unsupported scheme %q: expected mqtt, mqtts, coap or coaps (or none)", s[:i])
}

// address reads a bracketed IPv6 address, an IPv4 address or a host name.
func (p parser) address(id *ID, pos int) (int, error) {
	s := p.s
	if pos < len(s) && s[pos] == '[' {
		end := strings.IndexByte(s[pos:], ']')
		if end < 0 {
			return 0, p.errAt(pos, "'[' of an IPv6 address is never closed by ']'")
		}
		a, err := parseIPv6(s[pos+1 : pos+end])
		if err != nil {
			return 0, p.errAt(pos+1, "%v", err)
		}
		id.Address = a
		return pos + end + 1, nil
	}
	end := pos
	for end < len(s) && isHostChar(s[end]) {
		end++
	}
	if end == pos {
		if end < len(s) && s[end] == ':' {
			return 0, p.errAt(pos, "expected an address before ':' (an IPv6 address goes in brackets, e.g. [::1]:5683)")
		}
		return 0, p.errAt(pos, "expected an address (an IPv4 address, a bracketed IPv6 address or a host name)")
	}
	if end < len(s) && s[end] != ':' && s[end] != '?' {
		r, _ := utf8.DecodeRuneInString(s[end:])
		if unicode.IsSpace(r) {
			return 0, p.errAt(end, "unexpected space after %q: an address has no spaces; expected an IPv4 address, a bracketed IPv6 address or a host name (the template \"IP address:port?method:params?data location\" is prose: put a real address there)", s[pos:end])
		}
		return 0, p.errAt(end, "unexpected %q in address: expected an IPv4 address, a bracketed IPv6 address or a host name (letters, digits, '-', '.', '_'), then ':' port or '?' method", r)
	}
	host := s[pos:end]
	if off, err := checkHost(host); err != nil {
		return 0, p.errAt(pos+off, "%v", err)
	}
	id.Address = host
	return end, nil
}

// port reads an optional ":" port, then the '?' that starts the method.
func (p parser) port(id *ID, pos int) (int, error) {
	s := p.s
	if pos < len(s) && s[pos] == ':' {
		start := pos + 1
		end := start
		for end < len(s) && isDigit(s[end]) {
			end++
		}
		if end == start {
			return 0, p.errAt(start, "expected a port number (1-65535) after ':'")
		}
		n, err := strconv.Atoi(s[start:end])
		if err != nil || end-start > 5 || n < 1 || n > 65535 {
			return 0, p.errAt(start, "port %s is out of range: expected a port number (1-65535)", s[start:end])
		}
		id.Port = n
		pos = end
	}
	if pos >= len(s) {
		return 0, p.errAt(pos, "expected '?' and a method after the address")
	}
	if s[pos] != '?' {
		r, _ := utf8.DecodeRuneInString(s[pos:])
		if id.Port != 0 {
			return 0, p.errAt(pos, "unexpected %q after the port: expected '?' and a method", r)
		}
		return 0, p.errAt(pos, "unexpected %q after the address: expected ':' port or '?' and a method", r)
	}
	return pos + 1, nil
}

// method reads the method name after '?'.
func (p parser) method(id *ID, pos int) (int, error) {
	s := p.s
	end := pos
	for end < len(s) && (isLetter(s[end]) || end > pos && (isDigit(s[end]) || s[end] == '_')) {
		end++
	}
	if end == pos {
		return 0, p.errAt(pos, "expected a method after '?' (a letter, then letters, digits or '_', e.g. READ)")
	}
	if end-pos > maxMethod {
		return 0, p.errAt(pos, "method is longer than %d characters", maxMethod)
	}
	id.Method = strings.ToUpper(s[pos:end])
	if end >= len(s) {
		return 0, p.errAt(end, "expected ':' and params, or '?' and a location, after the method")
	}
	if s[end] != ':' && s[end] != '?' {
		r, _ := utf8.DecodeRuneInString(s[end:])
		return 0, p.errAt(end, "unexpected %q in method: expected letters, digits or '_', then ':' params or '?' location", r)
	}
	return end, nil
}

// paramsAndLocation reads what follows the method: "?" location, or
// ":" params "?" location, or the legacy ":" params ":" location.
func (p parser) paramsAndLocation(id *ID, pos int) error {
	s := p.s
	if s[pos] == '?' {
		return p.location(id, pos+1)
	}
	start := pos + 1
	q, lastColon, err := p.scanParams(start)
	if err != nil {
		return err
	}
	var end, loc int
	switch {
	case q >= 0:
		end, loc = q, q+1
	case lastColon >= 0:
		end, loc = lastColon, lastColon+1
	default:
		return p.errAt(len(s), "expected '?' and a location after the params (or the settings form METHOD:params:location)")
	}
	if end == start {
		return p.errAt(start, "expected params after ':' (write METHOD?location when there are none)")
	}
	params, err := p.splitParams(start, end)
	if err != nil {
		return err
	}
	id.Params = params
	return p.location(id, loc)
}

// location takes the rest of the input, which must not be empty.
func (p parser) location(id *ID, pos int) error {
	if pos >= len(p.s) {
		return p.errAt(pos, "expected a location after '%c'", p.s[pos-1])
	}
	id.Location = p.s[pos:]
	return nil
}

// scanParams finds the first '?' and the last ':' outside placeholders,
// from start up to that '?' (or the end), and checks the placeholders nest.
func (p parser) scanParams(start int) (q, lastColon int, err error) {
	s := p.s
	lastColon = -1
	depth, open := 0, -1
	for i := start; i < len(s); i++ {
		switch c := s[i]; {
		case c == '<':
			if depth == 0 {
				open = i
			}
			depth++
		case c == '>':
			if depth == 0 {
				return 0, 0, p.errAt(i, "unexpected '>' outside a placeholder <...>")
			}
			depth--
		case depth > 0:
		case c == '?':
			return i, lastColon, nil
		case c == ':':
			lastColon = i
		}
	}
	if depth > 0 {
		return 0, 0, p.errAt(open, "placeholder '<' is never closed by '>'")
	}
	return -1, lastColon, nil
}

// splitParams splits s[start:end] on commas outside placeholders. Every item
// must be non-empty.
func (p parser) splitParams(start, end int) ([]string, error) {
	s := p.s
	var items []string
	depth, from := 0, start
	for i := start; i <= end; i++ {
		if i < end {
			switch s[i] {
			case '<':
				depth++
				continue
			case '>':
				depth--
				continue
			case ',':
				if depth > 0 {
					continue
				}
			default:
				continue
			}
		}
		if i == from {
			if i < end {
				return nil, p.errAt(i, "empty param before ','")
			}
			return nil, p.errAt(i, "empty param after ','")
		}
		items = append(items, s[from:i])
		from = i + 1
	}
	return items, nil
}

// parseIPv6 checks the text between brackets and returns its canonical form.
func parseIPv6(s string) (string, error) {
	if strings.ContainsRune(s, '%') {
		return "", fmt.Errorf("IPv6 zone %q is not allowed in an identifier", s[strings.IndexByte(s, '%'):])
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() {
		return "", fmt.Errorf("expected an IPv6 address inside [ ], got %q", s)
	}
	return a.String(), nil
}

// checkHost validates an unbracketed address: an IPv4 address, or a host name
// of dot-separated labels. A name whose first label is all digits and is
// followed by a dot must be an IPv4 address, so "10.50.4.x" is refused rather
// than taken for a host name. It returns the byte offset of the problem.
func checkHost(h string) (int, error) {
	if looksIPv4(h) {
		a, err := netip.ParseAddr(h)
		if err != nil || !a.Is4() {
			return 0, fmt.Errorf("%q is not an IPv4 address (four numbers 0-255 without leading zeros, e.g. 10.10.11.44)", h)
		}
		return 0, nil
	}
	return checkHostName(h)
}

// looksIPv4 reports whether h's first label is all digits and followed by a
// dot: then h is an IPv4 address or an error, never a host name (rule 2 of
// docs/spec/identifiers.md section 2).
func looksIPv4(h string) bool {
	first, _, dotted := strings.Cut(h, ".")
	return dotted && allDigits(first)
}

// CheckHost reports whether s is an address of the identifier grammar
// without brackets (docs/spec/identifiers.md section 2): an IPv4 address, or
// a host-name of at most 253 characters in dot-separated labels of 1 to 63
// letters, digits, '-' and '_' whose first label, if all digits, is not
// followed by a dot ("1.2" and "010.1.1.1" are errors, "12345" a host name).
// It is the one rule for both Parse's addresses and the agent protocol's
// device ids (agent.CheckDeviceID). Its errors do not repeat s: the caller
// names what s is.
func CheckHost(s string) error {
	if s == "" {
		return errors.New("empty address")
	}
	for i := 0; i < len(s); i++ {
		if !isHostChar(s[i]) {
			return fmt.Errorf("character %q at byte %d is not a letter, digit, '-', '.' or '_'", s[i], i)
		}
	}
	if _, err := checkHost(s); err != nil {
		if looksIPv4(s) {
			return errors.New("neither a host name (a first label of digits may not be followed by '.') nor an IPv4 address (four numbers 0-255 without leading zeros, e.g. 10.10.11.44)")
		}
		return err
	}
	return nil
}

// checkHostName checks the length and labels of a host name whose characters
// the caller has checked. It returns the byte offset of the problem.
func checkHostName(h string) (int, error) {
	if len(h) > maxHost {
		return 0, fmt.Errorf("host name is longer than %d characters", maxHost)
	}
	off := 0
	for _, label := range strings.Split(h, ".") {
		if label == "" {
			return off, fmt.Errorf("empty label in host name %q (no leading, trailing or double dots)", h)
		}
		if len(label) > maxLabel {
			return off, fmt.Errorf("label %q of host name is longer than %d characters", label, maxLabel)
		}
		off += len(label) + 1
	}
	return 0, nil
}

func isLetter(c byte) bool   { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool    { return '0' <= c && c <= '9' }
func isHostChar(c byte) bool { return isLetter(c) || isDigit(c) || c == '-' || c == '.' || c == '_' }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}
