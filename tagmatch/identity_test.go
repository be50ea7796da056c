package tagmatch

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
)

// TestIdentityVectors runs the "identity" vectors of docs/spec/vectors/tagmatch.json:
// tag trust, docs/spec/tagmatch.md section 10.
func TestIdentityVectors(t *testing.T) {
	raw, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Identity []struct {
			Name       string   `json:"name"`
			Keys       []string `json:"keys"`
			Registered string   `json:"registered"`
			Live       string   `json:"live"`
			Outcome    string   `json:"outcome"`
			Key        string   `json:"key"`
			RegValue   string   `json:"registered_value"`
			LiveValue  string   `json:"live_value"`
			Missing    bool     `json:"missing"`
		} `json:"identity"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Identity) == 0 {
		t.Fatal("no identity vectors")
	}
	for _, tc := range v.Identity {
		t.Run(tc.Name, func(t *testing.T) {
			keys, err := CheckIdentityKeys(tc.Keys)
			if err != nil {
				t.Fatal(err)
			}
			reg, err := ParseKV(tc.Registered)
			if err != nil {
				t.Fatal(err)
			}
			live, err := ParseKV(tc.Live)
			if err != nil {
				t.Fatal(err)
			}
			err = CheckIdentity(Identity(reg, keys), live)
			switch tc.Outcome {
			case "trusted":
				if err != nil {
					t.Fatalf("got %v, want trusted", err)
				}
			case "tag-mismatch":
				var ie *IdentityError
				if !errors.As(err, &ie) || !errors.Is(err, ErrIdentityMismatch) {
					t.Fatalf("got %v, want an identity mismatch", err)
				}
				want := IdentityError{Key: tc.Key, Registered: tc.RegValue, Live: tc.LiveValue, Missing: tc.Missing}
				if *ie != want {
					t.Fatalf("got %+v, want %+v", *ie, want)
				}
			default:
				t.Fatalf("unknown outcome %q", tc.Outcome)
			}
		})
	}
}

func TestCheckIdentityKeys(t *testing.T) {
	cases := []struct {
		name string
		in   []string
		want []string
		bad  bool
	}{
		{name: "default", in: nil, want: []string{"manufacturer", "product", "model"}},
		{name: "normalised", in: []string{"Model", "User info"}, want: []string{"model", "zone"}},
		{name: "duplicate", in: []string{"model", "Model"}, bad: true},
		{name: "invalid", in: []string{"a=b"}, bad: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CheckIdentityKeys(tc.in)
			if tc.bad {
				if !errors.Is(err, ErrInvalidTag) {
					t.Fatalf("got %v, %v; want an ErrInvalidTag", got, err)
				}
				return
			}
			if err != nil || len(got) != len(tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}
