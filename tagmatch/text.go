package tagmatch

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// The free-text form is what the article's devices say:
//
//	Acme Corp. climate control model: xyz User info: South
//
// The text before the first "key:" is the lead, "manufacturer product"; each
// "key:" after it starts an attribute whose value runs to the next "key:".
// docs/spec/tagmatch.md has the grammar; the rules in brief:
//
//   - Words are separated by white space, which is collapsed to one space.
//   - A word ending in ":" is a key marker; "User info:" (any case) is the
//     two-word marker of the zone. Words with ":" elsewhere ("10:30") are value words.
//   - A value or manufacturer may be one double-quoted string (escapes \" and \\),
//     for values with ":", quotes, odd spacing, or that would split wrongly.
//   - The lead splits at the end of the first run of company suffixes after the
//     first word (Corp., Inc., Ltd., GmbH...), else after the first word ending in
//     ".", else after the first word. A quoted first word is the manufacturer.

// companySuffixes end a manufacturer's name in the lead. Compared lower-cased with
// dots and commas removed, so "S.A." and "Inc," count.
var companySuffixes = map[string]bool{
	"corp": true, "corporation": true, "inc": true, "incorporated": true,
	"ltd": true, "limited": true, "llc": true, "llp": true, "gmbh": true,
	"ag": true, "co": true, "sa": true, "sas": true, "sarl": true, "srl": true,
	"spa": true, "bv": true, "nv": true, "plc": true, "oy": true, "ab": true,
	"kk": true, "pty": true, "kg": true,
}

// zoneLabel is how the free-text form prints the zone, as the article does.
const zoneLabel = "User info"

type textToken struct {
	s      string // the word, or the unescaped content of a quoted string
	off    int    // byte offset in the input
	quoted bool
	key    string // for a key marker: the normalised key; "" otherwise
}

// ParseText parses the free-text form of a tag, e.g.
// "Acme Corp. climate control model: xyz User info: South". The result is in
// canonical form (see Tag.Validate). Errors are *SyntaxError values naming the column.
func ParseText(s string) (Tag, error) {
	toks, err := tokenizeText(s)
	if err != nil {
		return nil, err
	}
	first := len(toks)
	for i, tk := range toks {
		if tk.key != "" {
			first = i
			break
		}
	}
	var t Tag
	if t, err = parseLead(s, toks[:first], t); err != nil {
		return nil, err
	}
	for i := first; i < len(toks); {
		j := i + 1
		for j < len(toks) && toks[j].key == "" {
			j++
		}
		v, err := joinValue(s, toks[i], toks[i+1:j])
		if err != nil {
			return nil, err
		}
		if t, err = addAttr(s, "text", toks[i].off, t, toks[i].key, v); err != nil {
			return nil, err
		}
		i = j
	}
	return t, nil
}

// tokenizeText splits s into words and quoted strings and marks the key markers,
// merging "User" "info:" into one zone marker.
func tokenizeText(s string) ([]textToken, error) {
	if len(s) > MaxInputLen {
		return nil, syntaxErr("text", s, MaxInputLen, "input longer than %d bytes", MaxInputLen)
	}
	if !utf8.ValidString(s) {
		return nil, syntaxErr("text", s, invalidUTF8At(s), "invalid UTF-8")
	}
	var toks []textToken
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if unicode.IsSpace(r) {
			i += n
			continue
		}
		if r == '"' {
			content, end, err := readQuoted("text", s, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, textToken{s: content, off: i, quoted: true})
			i = end
			continue
		}
		start := i
		for i < len(s) {
			r, n := utf8.DecodeRuneInString(s[i:])
			if unicode.IsSpace(r) {
				break
			}
			if r == '"' {
				return nil, syntaxErr("text", s, i, "a quote may only start a word")
			}
			i += n
		}
		tk := textToken{s: s[start:i], off: start}
		if strings.HasSuffix(tk.s, ":") {
			k := NormalizeKey(tk.s[:len(tk.s)-1])
			if !ValidKey(k) {
				return nil, syntaxErr("text", s, start, "invalid key %q (keys are letters, digits, _ - ., at most %d bytes)", tk.s[:len(tk.s)-1], MaxKeyLen)
			}
			tk.key = k
			if last := len(toks) - 1; k == "info" && last >= 0 && !toks[last].quoted && toks[last].key == "" && strings.EqualFold(toks[last].s, "user") {
				tk = textToken{s: toks[last].s + " " + tk.s, off: toks[last].off, key: KeyZone}
				toks = toks[:last]
			}
		}
		toks = append(toks, tk)
	}
	return toks, nil
}

// readQuoted reads the double-quoted string starting at s[start] and returns its
// unescaped content and the offset after it. The closing quote must be followed by
// white space, the end, or (in the kv and policy forms) a delimiter they check.
func readQuoted(form, s string, start int) (string, int, error) {
	var b strings.Builder
	for i := start + 1; i < len(s); {
		c := s[i]
		switch c {
		case '"':
			i++
			if form == "text" && i < len(s) {
				if r, _ := utf8.DecodeRuneInString(s[i:]); !unicode.IsSpace(r) {
					return "", 0, syntaxErr(form, s, i, "expected white space after closing quote")
				}
			}
			return b.String(), i, nil
		case '\\':
			if i+1 >= len(s) || (s[i+1] != '"' && s[i+1] != '\\') {
				return "", 0, syntaxErr(form, s, i, `bad escape in quoted string (only \" and \\)`)
			}
			b.WriteByte(s[i+1])
			i += 2
		default:
			b.WriteByte(c)
			i++
		}
	}
	return "", 0, syntaxErr(form, s, start, "unterminated quoted string")
}

// joinValue builds the value following key marker k from its tokens.
func joinValue(s string, k textToken, toks []textToken) (string, error) {
	if len(toks) == 0 {
		return "", syntaxErr("text", s, k.off, "missing value for %q (write \"\" for an empty value)", k.s)
	}
	if len(toks) == 1 {
		return strings.TrimSpace(toks[0].s), nil
	}
	words := make([]string, len(toks))
	for i, tk := range toks {
		if tk.quoted {
			return "", syntaxErr("text", s, tk.off, "a quoted value must stand alone")
		}
		words[i] = tk.s
	}
	return strings.Join(words, " "), nil
}

// parseLead turns the words before the first key marker into manufacturer and product.
func parseLead(s string, toks []textToken, t Tag) (Tag, error) {
	if len(toks) == 0 {
		return t, nil
	}
	var m, p string
	hasProduct, pTok := len(toks) > 1, 1
	if toks[0].quoted {
		m = strings.TrimSpace(toks[0].s)
		if len(toks) > 1 {
			v, err := joinValue(s, toks[0], toks[1:])
			if err != nil {
				return nil, err
			}
			p = v
		}
	} else {
		words := make([]string, len(toks))
		for i, tk := range toks {
			if tk.quoted {
				return nil, syntaxErr("text", s, tk.off, "quote the manufacturer (the first word) to quote the product")
			}
			words[i] = tk.s
		}
		m, p = splitLead(words)
		hasProduct, pTok = p != "", strings.Count(m, " ")+1
	}
	t, err := addAttr(s, "text", toks[0].off, t, KeyManufacturer, m)
	if err != nil {
		return nil, err
	}
	if hasProduct {
		return addAttr(s, "text", toks[pTok].off, t, KeyProduct, p)
	}
	return t, nil
}

// splitLead splits the lead's words into manufacturer and product (see the rules above).
func splitLead(words []string) (manufacturer, product string) {
	end := 1
	if i := firstSuffix(words); i > 0 {
		end = i + 1
		for end < len(words) && isCompanySuffix(words[end]) {
			end++
		}
	} else {
		for i, w := range words {
			if len(w) > 1 && strings.HasSuffix(w, ".") {
				end = i + 1
				break
			}
		}
	}
	return strings.Join(words[:end], " "), strings.Join(words[end:], " ")
}

func firstSuffix(words []string) int {
	for i, w := range words {
		if isCompanySuffix(w) {
			return i
		}
	}
	return -1
}

func isCompanySuffix(w string) bool {
	if len(w) > 16 {
		return false
	}
	var buf [16]byte
	n := 0
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch {
		case c == '.' || c == ',':
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		buf[n] = c
		n++
	}
	return companySuffixes[string(buf[:n])]
}

// addAttr appends key=value to t after checking it, reporting problems at byte
// offset off of input s.
func addAttr(s, form string, off int, t Tag, key, value string) (Tag, error) {
	if msg := checkValue(value); msg != "" {
		return nil, syntaxErr(form, s, off, "%s: %s", key, msg)
	}
	if t.index(key) >= 0 {
		return nil, syntaxErr(form, s, off, "duplicate key %q", key)
	}
	if len(t) >= MaxAttrs {
		return nil, syntaxErr(form, s, off, "more than %d attributes", MaxAttrs)
	}
	return append(t, Attr{Key: key, Value: value}), nil
}

func invalidUTF8At(s string) int {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(s)
}

// Text prints t in the free-text form, e.g.
// "Acme Corp. climate control model: xyz User info: South". ParseText reads the
// result back to t, for any t that passes Validate: the manufacturer and product
// go in the lead only when they come first in t, values are quoted when they must
// be, and the zone prints as "User info:".
func (t Tag) Text() string {
	var b strings.Builder
	i := 0
	if len(t) > 0 && t[0].Key == KeyManufacturer {
		i = 1
		var p *string
		if len(t) > 1 && t[1].Key == KeyProduct {
			p = &t[1].Value
			i = 2
		}
		writeLead(&b, t[0].Value, p)
	}
	for _, a := range t[i:] {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		if a.Key == KeyZone {
			b.WriteString(zoneLabel)
		} else {
			b.WriteString(a.Key)
		}
		b.WriteString(": ")
		writeTextValue(&b, a.Value)
	}
	return b.String()
}

func writeLead(b *strings.Builder, m string, p *string) {
	plain := textSafe(m) && (p == nil || textSafe(*p))
	if plain {
		lead := m
		if p != nil {
			lead += " " + *p
		}
		gm, gp := splitLead(strings.Split(lead, " "))
		plain = gm == m && (p == nil && gp == "" || p != nil && gp == *p)
	}
	if plain {
		b.WriteString(m)
		if p != nil {
			b.WriteString(" ")
			b.WriteString(*p)
		}
		return
	}
	b.WriteString(quote(m))
	if p != nil {
		b.WriteByte(' ')
		writeTextValue(b, *p)
	}
}

func writeTextValue(b *strings.Builder, v string) {
	if textSafe(v) {
		b.WriteString(v)
	} else {
		b.WriteString(quote(v))
	}
}

// textSafe reports whether v reads back as itself when printed bare in the
// free-text form.
func textSafe(v string) bool {
	if v == "" || strings.ContainsAny(v, `:"\`) {
		return false
	}
	prevSpace := true // no leading space
	for _, r := range v {
		if unicode.IsSpace(r) {
			if r != ' ' || prevSpace {
				return false
			}
			prevSpace = true
			continue
		}
		prevSpace = false
	}
	if prevSpace {
		return false
	}
	last := v[strings.LastIndexByte(v, ' ')+1:]
	return !strings.EqualFold(last, "user") // "user" + "info:" would read as the zone
}

// quote returns v in double quotes with \ and " escaped.
func quote(v string) string {
	var b strings.Builder
	b.Grow(len(v) + 2)
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
	return b.String()
}
