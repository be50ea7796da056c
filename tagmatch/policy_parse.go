package tagmatch

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// policySpecials may not appear in a bare policy value; quote the value instead.
const policySpecials = `,()"\=!<>~`

// ParsePolicy parses the policy language, e.g.
//
//	equal(manufacturer, model, zone), ignorecase, model in (xyz, xyz2), firmware >= 2.1, firmware < 3, zone != North, room ~ "bed*"
//
// Clauses are separated by ",": equal(k, ...) or equal(*) sets the equality keys,
// ignorecase compares values case-insensitively, and every other clause is a
// selector. The empty string is the zero (default) Policy. Errors are
// *SyntaxError values naming the column; docs/spec/tagmatch.md has the ABNF.
func ParsePolicy(s string) (Policy, error) {
	if len(s) > MaxInputLen {
		return Policy{}, syntaxErr("policy", s, MaxInputLen, "input longer than %d bytes", MaxInputLen)
	}
	if !utf8.ValidString(s) {
		return Policy{}, syntaxErr("policy", s, invalidUTF8At(s), "invalid UTF-8")
	}
	ps := &policyParser{s: s}
	var p Policy
	var sawEqual, sawCase bool
	if ps.skip(); ps.i == len(s) {
		return p, nil
	}
	for {
		start := ps.i
		key, err := ps.key()
		if err != nil {
			return Policy{}, err
		}
		ps.skip()
		switch {
		case key == "equal" && ps.peek() == '(':
			if sawEqual {
				return Policy{}, ps.errAt(start, "equal(...) given twice")
			}
			sawEqual = true
			if err := ps.equalList(&p); err != nil {
				return Policy{}, err
			}
		case key == "ignorecase" && (ps.i == len(s) || ps.peek() == ','):
			if sawCase {
				return Policy{}, ps.errAt(start, "ignorecase given twice")
			}
			sawCase = true
			p.IgnoreCase = true
		default:
			sel, err := ps.selector(key)
			if err != nil {
				return Policy{}, err
			}
			p.Selectors = append(p.Selectors, sel)
		}
		ps.skip()
		if ps.i == len(s) {
			return p, nil
		}
		if ps.peek() != ',' {
			return Policy{}, ps.errAt(ps.i, "expected , between clauses")
		}
		ps.i++
		ps.skip()
	}
}

type policyParser struct {
	s string
	i int
}

func (ps *policyParser) errAt(off int, format string, args ...any) error {
	return syntaxErr("policy", ps.s, off, format, args...)
}

func (ps *policyParser) skip() { ps.i = skipSpace(ps.s, ps.i) }

func (ps *policyParser) peek() byte {
	if ps.i < len(ps.s) {
		return ps.s[ps.i]
	}
	return 0
}

// key reads a key token and returns it normalised.
func (ps *policyParser) key() (string, error) {
	start := ps.i
	for ps.i < len(ps.s) {
		c := ps.s[ps.i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			break
		}
		ps.i++
	}
	if ps.i == start {
		if ps.i == len(ps.s) {
			return "", ps.errAt(start, "expected a key, found the end")
		}
		r, _ := utf8.DecodeRuneInString(ps.s[ps.i:])
		return "", ps.errAt(start, "expected a key, found %q", r)
	}
	k := NormalizeKey(ps.s[start:ps.i])
	if !ValidKey(k) {
		return "", ps.errAt(start, "invalid key %q (letters, digits, _ - ., starting with a letter or digit, at most %d bytes)", ps.s[start:ps.i], MaxKeyLen)
	}
	return k, nil
}

// equalList reads "(k, ...)" or "(*)" after equal.
func (ps *policyParser) equalList(p *Policy) error {
	ps.i++ // (
	ps.skip()
	if ps.peek() == '*' {
		ps.i++
		ps.skip()
		if ps.peek() != ')' {
			return ps.errAt(ps.i, "expected ) after equal(*")
		}
		ps.i++
		p.AllKeys = true
		return nil
	}
	p.Equal = []string{}
	for {
		start := ps.i
		k, err := ps.key()
		if err != nil {
			return err
		}
		if slices.Contains(p.Equal, k) {
			return ps.errAt(start, "equal key %q given twice", k)
		}
		p.Equal = append(p.Equal, k)
		ps.skip()
		switch ps.peek() {
		case ',':
			ps.i++
			ps.skip()
		case ')':
			ps.i++
			return nil
		default:
			return ps.errAt(ps.i, "expected , or ) in equal(...)")
		}
	}
}

// selector reads the operator and value(s) after key.
func (ps *policyParser) selector(key string) (Selector, error) {
	sel := Selector{Key: key}
	opStart := ps.i
	sel.Op = ps.op()
	if sel.Op == 0 {
		return sel, ps.errAt(opStart, "expected an operator (= != < <= > >= ~ !~ in, not in) after key %q", key)
	}
	ps.skip()
	if sel.Op.isList() {
		vs, err := ps.list()
		if err != nil {
			return sel, err
		}
		sel.Values = vs
		return sel, nil
	}
	v, err := ps.value()
	if err != nil {
		return sel, err
	}
	sel.Values = []string{v}
	return sel, nil
}

func (ps *policyParser) op() Op {
	rest := ps.s[ps.i:]
	for _, c := range []struct {
		text string
		op   Op
	}{{"==", OpEq}, {"!=", OpNe}, {"<=", OpLe}, {">=", OpGe}, {"!~", OpNotGlob}, {"=", OpEq}, {"<", OpLt}, {">", OpGt}, {"~", OpGlob}} {
		if strings.HasPrefix(rest, c.text) {
			ps.i += len(c.text)
			return c.op
		}
	}
	word := func(w string) bool {
		if !strings.HasPrefix(strings.ToLower(rest), w) {
			return false
		}
		if len(rest) > len(w) && rest[len(w)] != ' ' && rest[len(w)] != '\t' && rest[len(w)] != '(' {
			return false
		}
		ps.i += len(w)
		rest = ps.s[ps.i:]
		return true
	}
	if word("in") {
		return OpIn
	}
	save := ps.i
	if word("not") {
		ps.skip()
		rest = ps.s[ps.i:]
		if word("in") {
			return OpNotIn
		}
	}
	ps.i = save
	return 0
}

// list reads "(v1, v2, ...)".
func (ps *policyParser) list() ([]string, error) {
	if ps.peek() != '(' {
		return nil, ps.errAt(ps.i, "expected ( to start the list")
	}
	ps.i++
	ps.skip()
	var vs []string
	for {
		v, err := ps.value()
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
		ps.skip()
		switch ps.peek() {
		case ',':
			ps.i++
			ps.skip()
		case ')':
			ps.i++
			return vs, nil
		default:
			return nil, ps.errAt(ps.i, "expected , or ) in the list")
		}
	}
}

// value reads a quoted or bare value.
func (ps *policyParser) value() (string, error) {
	start := ps.i
	if ps.peek() == '"' {
		content, end, err := readQuoted("policy", ps.s, ps.i)
		if err != nil {
			return "", err
		}
		ps.i = end
		v := strings.TrimSpace(content)
		if msg := checkValue(v); msg != "" {
			return "", ps.errAt(start, "%s", msg)
		}
		return v, nil
	}
	end := strings.IndexAny(ps.s[ps.i:], policySpecials)
	if end < 0 {
		end = len(ps.s) - ps.i
	}
	v := strings.TrimSpace(ps.s[ps.i : ps.i+end])
	if v == "" {
		if ps.i+end < len(ps.s) {
			return "", ps.errAt(ps.i+end, "expected a value, found %q (quote values holding %s)", ps.s[ps.i+end], policySpecials)
		}
		return "", ps.errAt(ps.i, "expected a value, found the end")
	}
	if msg := checkValue(v); msg != "" {
		return "", ps.errAt(start, "%s", msg)
	}
	ps.i += end
	return v, nil
}
