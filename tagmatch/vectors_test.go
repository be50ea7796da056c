package tagmatch

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
)

const vectorsPath = "../docs/spec/vectors/tagmatch.json"

// vecTag is a tag in the vectors: an array of [key, value] pairs taken as is, or
// a string in the structured form.
type vecTag struct {
	tag Tag
	kv  string
	raw bool
}

func (v *vecTag) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &v.kv)
	}
	var pairs [][2]string
	if err := json.Unmarshal(b, &pairs); err != nil {
		return err
	}
	v.raw = true
	for _, p := range pairs {
		v.tag = append(v.tag, Attr{Key: p[0], Value: p[1]})
	}
	return nil
}

func (v vecTag) resolve(t *testing.T) Tag {
	t.Helper()
	if v.raw {
		return v.tag
	}
	tg, err := ParseKV(v.kv)
	if err != nil {
		t.Fatalf("vector tag %q: %v", v.kv, err)
	}
	return tg
}

type vectors struct {
	Version int `json:"version"`
	Text    []struct {
		Name     string `json:"name"`
		Input    string `json:"input"`
		Tag      vecTag `json:"tag"`
		Text     string `json:"text"`
		ErrorCol int    `json:"error_col"`
	} `json:"text"`
	KV []struct {
		Name      string `json:"name"`
		Input     string `json:"input"`
		Tag       vecTag `json:"tag"`
		String    string `json:"string"`
		Canonical string `json:"canonical"`
		ErrorCol  int    `json:"error_col"`
	} `json:"kv"`
	Policy []struct {
		Name     string `json:"name"`
		Input    string `json:"input"`
		String   string `json:"string"`
		ErrorCol int    `json:"error_col"`
	} `json:"policy"`
	Versions []struct {
		A   string `json:"a"`
		B   string `json:"b"`
		Cmp int    `json:"cmp"`
	} `json:"versions"`
	Match []struct {
		Name       string  `json:"name"`
		Policy     string  `json:"policy"`
		Device     *vecTag `json:"device"`
		DeviceText string  `json:"device_text"`
		Candidates []struct {
			ID  string `json:"id"`
			Tag vecTag `json:"tag"`
		} `json:"candidates"`
		Outcome  string `json:"outcome"`
		ID       string `json:"id"`
		RunnerUp string `json:"runner_up"`
		Closest  string `json:"closest"`
		Score    int    `json:"score"`
	} `json:"match"`
}

func loadVectors(t *testing.T) vectors {
	t.Helper()
	b, err := readVectors()
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", vectorsPath, err)
	}
	if v.Version != 1 {
		t.Fatalf("vectors version %d, want 1", v.Version)
	}
	return v
}

func readVectors() ([]byte, error) { return os.ReadFile(vectorsPath) }

func wantSyntaxCol(t *testing.T, err error, col int) {
	t.Helper()
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a *SyntaxError at column %d", err, col)
	}
	if se.Col != col {
		t.Errorf("error column %d, want %d (%v)", se.Col, col, err)
	}
	if !errors.Is(err, ErrSyntax) {
		t.Errorf("errors.Is(err, ErrSyntax) = false for %v", err)
	}
}

func TestVectorsText(t *testing.T) {
	for _, c := range loadVectors(t).Text {
		t.Run(c.Name, func(t *testing.T) {
			got, err := ParseText(c.Input)
			if c.ErrorCol > 0 {
				wantSyntaxCol(t, err, c.ErrorCol)
				return
			}
			if err != nil {
				t.Fatalf("ParseText(%q): %v", c.Input, err)
			}
			if want := c.Tag.resolve(t); !got.Equal(want) {
				t.Fatalf("ParseText(%q) = %v, want %v", c.Input, got, want)
			}
			if txt := got.Text(); txt != c.Text {
				t.Errorf("Text() = %q, want %q", txt, c.Text)
			}
			back, err := ParseText(got.Text())
			if err != nil || !back.Equal(got) {
				t.Errorf("round trip: ParseText(%q) = %v, %v; want %v", got.Text(), back, err, got)
			}
		})
	}
}

func TestVectorsKV(t *testing.T) {
	for _, c := range loadVectors(t).KV {
		t.Run(c.Name, func(t *testing.T) {
			got, err := ParseKV(c.Input)
			if c.ErrorCol > 0 {
				wantSyntaxCol(t, err, c.ErrorCol)
				return
			}
			if err != nil {
				t.Fatalf("ParseKV(%q): %v", c.Input, err)
			}
			if want := c.Tag.resolve(t); !got.Equal(want) {
				t.Fatalf("ParseKV(%q) = %v, want %v", c.Input, got, want)
			}
			if s := got.String(); s != c.String {
				t.Errorf("String() = %q, want %q", s, c.String)
			}
			if s := got.Canonical(); s != c.Canonical {
				t.Errorf("Canonical() = %q, want %q", s, c.Canonical)
			}
		})
	}
}

func TestVectorsPolicy(t *testing.T) {
	for _, c := range loadVectors(t).Policy {
		t.Run(c.Name, func(t *testing.T) {
			p, err := ParsePolicy(c.Input)
			if c.ErrorCol > 0 {
				wantSyntaxCol(t, err, c.ErrorCol)
				return
			}
			if err != nil {
				t.Fatalf("ParsePolicy(%q): %v", c.Input, err)
			}
			if s := p.String(); s != c.String {
				t.Errorf("String() = %q, want %q", s, c.String)
			}
		})
	}
}

func TestVectorsVersions(t *testing.T) {
	for _, c := range loadVectors(t).Versions {
		t.Run(c.A+" vs "+c.B, func(t *testing.T) {
			if got := CompareVersions(c.A, c.B); got != c.Cmp {
				t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.A, c.B, got, c.Cmp)
			}
			if got := CompareVersions(c.B, c.A); got != -c.Cmp {
				t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.B, c.A, got, -c.Cmp)
			}
		})
	}
}

func TestVectorsMatch(t *testing.T) {
	for _, c := range loadVectors(t).Match {
		t.Run(c.Name, func(t *testing.T) {
			p, err := ParsePolicy(c.Policy)
			if err != nil {
				t.Fatalf("policy %q: %v", c.Policy, err)
			}
			var device Tag
			switch {
			case c.Device != nil:
				device = c.Device.resolve(t)
			default:
				if device, err = ParseText(c.DeviceText); err != nil {
					t.Fatalf("device %q: %v", c.DeviceText, err)
				}
			}
			var cands []Candidate
			for _, vc := range c.Candidates {
				cands = append(cands, Candidate{ID: vc.ID, Tag: vc.Tag.resolve(t)})
			}
			r := Match(p, device, cands)
			t.Log(Explain(r))
			if r.Outcome.String() != c.Outcome {
				t.Fatalf("outcome %q, want %q (%s)", r.Outcome, c.Outcome, Explain(r))
			}
			if id := candID(r.Best); id != c.ID {
				t.Errorf("best %q, want %q", id, c.ID)
			}
			if c.RunnerUp != "" && candID(r.RunnerUp) != c.RunnerUp {
				t.Errorf("runner-up %q, want %q", candID(r.RunnerUp), c.RunnerUp)
			}
			if c.Closest != "" && candID(r.Closest) != c.Closest {
				t.Errorf("closest %q, want %q", candID(r.Closest), c.Closest)
			}
			if r.Score != c.Score {
				t.Errorf("score %d, want %d", r.Score, c.Score)
			}
		})
	}
}

func candID(c *Candidate) string {
	if c == nil {
		return ""
	}
	return c.ID
}
