package tagmatch_test

import (
	"fmt"

	"github.com/fleetvault/fleetvault/tagmatch"
)

func ExampleParseText() {
	t, err := tagmatch.ParseText("Acme Corp. climate control model: xyz User info: South")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, a := range t {
		fmt.Printf("%s = %s\n", a.Key, a.Value)
	}
	fmt.Println(t.String())
	fmt.Println(t.Text())
	// Output:
	// manufacturer = Acme Corp.
	// product = climate control
	// model = xyz
	// zone = South
	// manufacturer=Acme Corp.; product=climate control; model=xyz; zone=South
	// Acme Corp. climate control model: xyz User info: South
}

func ExampleMatch() {
	north, _ := tagmatch.ParseText("Acme Corp. climate control model: xyz User info: North")
	south, _ := tagmatch.ParseText("Acme Corp. climate control model: xyz User info: South")
	backups := []tagmatch.Candidate{{ID: "north-climate", Tag: north}, {ID: "south-climate", Tag: south}}

	device, _ := tagmatch.ParseText("Acme Corp. climate control model: xyz User info: South")
	r := tagmatch.Match(tagmatch.Policy{}, device, backups)
	fmt.Println(r.Outcome, r.Best.ID)
	fmt.Println(tagmatch.Explain(r))

	east, _ := tagmatch.ParseText("Acme Corp. climate control model: xyz User info: East")
	fmt.Println(tagmatch.Explain(tagmatch.Match(tagmatch.Policy{}, east, backups)))
	// Output:
	// matched south-climate
	// matched piece south-climate (score 8): manufacturer=Acme Corp., product=climate control, model=xyz, zone=South equal
	// no backup matches: closest is piece north-climate (zone: device East, piece North)
}

func ExampleMatcher() {
	p, err := tagmatch.ParsePolicy("firmware >= 2.1, firmware < 3")
	if err != nil {
		fmt.Println(err)
		return
	}
	m, err := tagmatch.NewMatcher(p, []tagmatch.Candidate{
		{ID: "p-1", Tag: tagmatch.Tag{{Key: "model", Value: "xyz"}}},
		{ID: "p-2", Tag: tagmatch.Tag{{Key: "model", Value: "xyz"}, {Key: "zone", Value: "South"}}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, kv := range []string{
		"model=xyz; zone=South; firmware=2.10",
		"model=xyz; zone=North; firmware=2.4",
		"model=xyz; zone=South; firmware=3.0",
	} {
		device, _ := tagmatch.ParseKV(kv)
		fmt.Println(m.Match(device).Explain())
	}
	// Output:
	// matched piece p-2 (score 4): model=xyz, zone=South equal
	// matched piece p-1 (score 2): model=xyz equal
	// no backup matches: device excluded by policy: firmware < 3 fails (device firmware=3.0)
}
