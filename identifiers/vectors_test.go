package identifiers

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// vectorsPath is the conformance vectors of docs/spec/identifiers.md, shared
// with any other implementation of the standard.
const vectorsPath = "../docs/spec/vectors/identifiers.json"

// vector is one entry of the vectors file: a parse vector (Fields), an error
// vector (Error) or a rewrite vector (Rules and Output).
type vector struct {
	Comment string      `json:"comment"`
	Input   string      `json:"input"`
	Fields  *fields     `json:"fields"`
	Error   *errVector  `json:"error"`
	Rules   []ruleEntry `json:"rules"`
	Output  *string     `json:"output"`
}

// fields is the JSON shape of a parsed identifier, the same as `fleetvault ident parse` prints.
type fields struct {
	Address   string   `json:"address"`
	Port      int      `json:"port"`
	Scheme    string   `json:"scheme"`
	Method    string   `json:"method"`
	Params    []string `json:"params"`
	Location  string   `json:"location"`
	Canonical string   `json:"canonical"`
}

type errVector struct {
	Column   int    `json:"column"`
	Contains string `json:"contains"`
}

type ruleEntry struct {
	Local  string `json:"local"`
	Remote string `json:"remote"`
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	b, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatalf("%s: %v", vectorsPath, err)
	}
	if len(vs) == 0 {
		t.Fatalf("%s: no vectors", vectorsPath)
	}
	return vs
}

func vectorName(i int, v vector) string {
	name := v.Input
	if utf8.RuneCountInString(name) > 60 {
		name = string([]rune(name)[:60])
	}
	return strings.ReplaceAll(name, "/", "_") + "#" + itoa(i)
}

func itoa(i int) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + i%10)}, b...)
		i /= 10
		if i == 0 {
			return string(b)
		}
	}
}

func TestParseVectors(t *testing.T) {
	for i, v := range loadVectors(t) {
		if v.Rules != nil {
			continue // rewrite vectors: TestRewriteVectors
		}
		t.Run(vectorName(i, v), func(t *testing.T) {
			id, err := Parse(v.Input)
			switch {
			case v.Fields != nil:
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				want := v.Fields
				got := fields{id.Address, id.Port, id.Scheme, id.Method, id.Params, id.Location, id.String()}
				if got.Params == nil {
					got.Params = []string{}
				}
				if got.Address != want.Address || got.Port != want.Port || got.Scheme != want.Scheme ||
					got.Method != want.Method || !slices.Equal(got.Params, want.Params) ||
					got.Location != want.Location || got.Canonical != want.Canonical {
					t.Errorf("Parse(%q)\n got %+v\nwant %+v", v.Input, got, *want)
				}
				checkRoundTrip(t, id)
			case v.Error != nil:
				if err == nil {
					t.Fatalf("Parse(%q) = %#v, want an error", v.Input, id)
				}
				se, ok := err.(*SyntaxError)
				if !ok {
					t.Fatalf("Parse(%q) error %T %v, want *SyntaxError", v.Input, err, err)
				}
				if se.Column != v.Error.Column || !strings.Contains(se.Error(), v.Error.Contains) {
					t.Errorf("Parse(%q) error %q (column %d), want column %d containing %q", v.Input, se.Error(), se.Column, v.Error.Column, v.Error.Contains)
				}
				if se.Input != v.Input {
					t.Errorf("SyntaxError.Input = %q, want %q", se.Input, v.Input)
				}
			default:
				t.Fatalf("vector %d has neither fields, error nor rules", i)
			}
		})
	}
}

// checkRoundTrip checks that id's canonical form parses back to id and
// formats the same again.
func checkRoundTrip(t testing.TB, id ID) {
	t.Helper()
	s := id.String()
	back, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(String()) of %#v: %v", id, err)
	}
	if !back.Equal(id) {
		t.Fatalf("Parse(%q) = %#v, want %#v", s, back, id)
	}
	if s2 := back.String(); s2 != s {
		t.Fatalf("String not stable: %q then %q", s, s2)
	}
	if err := id.Validate(); err != nil {
		t.Fatalf("Validate(%#v): %v", id, err)
	}
}

// TestArticleIdentifiers checks every identifier printed in the article
// (testdata/article.txt, copied verbatim) parses.
func TestArticleIdentifiers(t *testing.T) {
	b, err := os.ReadFile("testdata/article.txt")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		n++
		t.Run(strings.ReplaceAll(line, "/", "_"), func(t *testing.T) {
			id, err := Parse(line)
			if err != nil {
				t.Fatal(err)
			}
			checkRoundTrip(t, id)
		})
	}
	if n < 10 {
		t.Fatalf("only %d identifiers in testdata/article.txt", n)
	}
}

// TestParseErrorsExtra covers errors the JSON vectors cannot carry well
// (invalid UTF-8, very long inputs).
func TestParseErrorsExtra(t *testing.T) {
	long := strings.Repeat("a", 64)
	tests := []struct {
		name, in string
		column   int
		contains string
	}{
		{"invalid UTF-8", "h?READ?ab\xffc", 10, "invalid UTF-8"},
		{"too long", "h?READ?" + strings.Repeat("x", MaxLength), MaxLength + 1, "longer than 4096 bytes"},
		{"method too long", "h?R" + long + "?TAG", 3, "method is longer than 64"},
		{"label too long", long + ".example?READ?TAG", 1, "longer than 63"},
		{"host too long", strings.Repeat("abcdefgh.", 30) + "x?READ?TAG", 1, "longer than 253"},
		{"C1 control", "h?READ?a\u0085b", 9, "control character U+0085"},
		{"no-break space at the end", "h?READ?TAG\u00a0", 11, "ends with white space"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.in)
			se, ok := err.(*SyntaxError)
			if !ok {
				t.Fatalf("Parse error %v, want *SyntaxError", err)
			}
			if se.Column != tt.column || !strings.Contains(se.Message, tt.contains) {
				t.Errorf("got column %d %q, want column %d containing %q", se.Column, se.Message, tt.column, tt.contains)
			}
			if n := utf8.RuneCountInString(se.Error()); n > 400 {
				t.Errorf("error message is %d characters long", n)
			}
		})
	}
}
