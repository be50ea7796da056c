package apiclient

import (
	"errors"
	"strings"
	"testing"
)

func TestReadEvents(t *testing.T) {
	stream := ": keep-alive\n\nevent: progress\nid: 0\ndata: {\"a\":1}\n\ndata: x\ndata: y\n\nevent: end\ndata: {}\n\n"
	var got []string
	err := ReadEvents(strings.NewReader(stream), func(ev Event) error {
		got = append(got, ev.Name+"="+string(ev.Data))
		return nil
	})
	if err != nil || strings.Join(got, "|") != `progress={"a":1}|message=x`+"\n"+`y|end={}` {
		t.Fatalf("%q %v", got, err)
	}
	stop := errors.New("stop")
	if err := ReadEvents(strings.NewReader(stream), func(Event) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("fn's error: %v", err)
	}
}

func FuzzReadEvents(f *testing.F) {
	f.Add("event: progress\ndata: {}\n\nevent: end\ndata: {}\n\n")
	f.Add(":\n\n\n\ndata\n")
	f.Fuzz(func(t *testing.T, s string) {
		_ = ReadEvents(strings.NewReader(s), func(ev Event) error {
			if ev.Name == "" {
				t.Fatal("event without a name")
			}
			return nil
		})
	})
}
