package settingsdoc

import (
	"encoding/base64"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"time"

	"github.com/fleetvault/fleetvault/agent"
)

// Change is one difference between two settings documents. Path is a JSON
// Pointer (RFC 6901) into the document.
type Change struct {
	Path string `json:"path"`
	From any    `json:"from,omitempty"`
	To   any    `json:"to,omitempty"`
}

// Diff says what document B changes relative to document A.
type Diff struct {
	A       string   `json:"a"`
	B       string   `json:"b"`
	Same    bool     `json:"same"`
	Added   []Change `json:"added"`
	Removed []Change `json:"removed"`
	Changed []Change `json:"changed"`
}

// DiffSettings says how settings sb (named b) differ from sa (named a): keys
// added, removed and changed, by JSON Pointer path. Maps are compared key by
// key; arrays and scalars whole.
func DiffSettings(a, b string, sa, sb agent.Settings) Diff {
	d := Diff{A: a, B: b, Added: []Change{}, Removed: []Change{}, Changed: []Change{}}
	diffValues("", JSONValue(sa), JSONValue(sb), &d)
	d.Same = len(d.Added)+len(d.Removed)+len(d.Changed) == 0
	return d
}

// Paths lists every path of the diff, sorted.
func (d Diff) Paths() []string {
	var out []string
	for _, l := range [][]Change{d.Added, d.Removed, d.Changed} {
		for _, c := range l {
			out = append(out, c.Path)
		}
	}
	sort.Strings(out)
	return out
}

// diffValues records how b differs from a under path, recursing into
// objects; arrays and scalars are compared whole.
func diffValues(path string, a, b any, d *Diff) {
	ma, aok := a.(map[string]any)
	mb, bok := b.(map[string]any)
	if aok && bok {
		keys := map[string]bool{}
		for k := range ma {
			keys[k] = true
		}
		for k := range mb {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			p := path + "/" + Escape(k)
			va, ina := ma[k]
			vb, inb := mb[k]
			switch {
			case !ina:
				d.Added = append(d.Added, Change{Path: p, To: vb})
			case !inb:
				d.Removed = append(d.Removed, Change{Path: p, From: va})
			default:
				diffValues(p, va, vb, d)
			}
		}
		return
	}
	if !equalJSON(a, b) {
		d.Changed = append(d.Changed, Change{Path: path, From: a, To: b})
	}
}

func equalJSON(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !equalJSON(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return fmt.Sprintf("%T:%v", a, a) == fmt.Sprintf("%T:%v", b, b)
}

// JSONValue turns a decoded CBOR value into one encoding/json can write:
// maps get string keys, byte strings become base64 text, NaN and infinities
// become text, big integers become decimal text.
func JSONValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[k] = JSONValue(val)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[fmt.Sprint(k)] = JSONValue(val)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = JSONValue(val)
		}
		return out
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
		return x
	case float32:
		return JSONValue(float64(x))
	case big.Int:
		return x.String()
	case *big.Int:
		return x.String()
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case nil, bool, string, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return x
	}
	return fmt.Sprint(v) // tags and other CBOR oddities, as text
}
