package settingsdoc

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/tagmatch"
)

const vectorsPath = "../docs/spec/vectors/profiles.json"

type vector struct {
	Name    string          `json:"name"`
	Profile Profile         `json:"profile"`
	Backup  json.RawMessage `json:"backup"`
	Current json.RawMessage `json:"current"`
	Data    struct {
		Device string      `json:"device"`
		Group  string      `json:"group"`
		Tag    [][2]string `json:"tag"`
	} `json:"data"`
	Want  json.RawMessage `json:"want"`
	Error string          `json:"error"`
}

// cborOf encodes a vector's JSON document: integers as CBOR integers.
func cborOf(t *testing.T, raw json.RawMessage) []byte {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v map[string]any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("vector document: %v", err)
	}
	b, err := agent.EncodeSettings(numbers(v).(map[string]any))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func numbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			x[k] = numbers(c)
		}
	case []any:
		for i, c := range x {
			x[i] = numbers(c)
		}
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	}
	return v
}

func TestProfileVectors(t *testing.T) {
	raw, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Cases []vector `json:"cases"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Cases) < 10 {
		t.Fatalf("only %d vectors", len(file.Cases))
	}
	for _, v := range file.Cases {
		t.Run(v.Name, func(t *testing.T) {
			v.Profile.Name = "vector"
			c, err := v.Profile.Compile()
			if v.Error == "profile" {
				if !errors.Is(err, ErrProfile) {
					t.Fatalf("compile: got %v, want an ErrProfile", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var tag tagmatch.Tag
			for _, p := range v.Data.Tag {
				tag = append(tag, tagmatch.Attr{Key: p[0], Value: p[1]})
			}
			data := Data{Device: DeviceData{ID: v.Data.Device, Group: v.Data.Group}, Tag: TagData(tag)}
			got, err := c.Apply(cborOf(t, v.Backup), cborOf(t, v.Current), data)
			if v.Error == "apply" {
				if !errors.Is(err, ErrApply) {
					t.Fatalf("apply: got %v, want an ErrApply", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := cborOf(t, v.Want); !bytes.Equal(got, want) {
				gs, _ := agent.DecodeSettings(got)
				ws, _ := agent.DecodeSettings(want)
				t.Fatalf("got %v\nwant %v\ndiff %v", gs, ws, DiffSettings("want", "got", ws, gs).Paths())
			}
		})
	}
}
