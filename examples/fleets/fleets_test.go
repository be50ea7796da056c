package fleets

import (
	"slices"
	"testing"

	"github.com/fleetvault/fleetvault/devicesim"
)

func TestEveryShippedFleetParses(t *testing.T) {
	names := Names()
	if !slices.Contains(names, "model-house") {
		t.Fatalf("shipped fleets %v lack model-house", names)
	}
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			b, err := Read(n)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := devicesim.Parse(n+".yaml", b); err != nil {
				t.Fatal(err)
			}
		})
	}
	if _, err := Read("nope"); err == nil {
		t.Fatal("an unknown fleet was read")
	}
}
