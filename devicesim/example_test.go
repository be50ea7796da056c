package devicesim_test

import (
	"fmt"

	"github.com/fleetvault/fleetvault/devicesim"
)

// A fleet is expanded from its file deterministically: the devices, their
// tags and their faults are known before anything connects, so a server can
// be provisioned with them first.
func ExampleNew() {
	spec, err := devicesim.Parse("homes.yaml", []byte(`
types:
  - name: climate
    tag: {manufacturer: Acme Corp., model: xyz, zone: "{zone}"}
    settings: {factory: {setpoint_c: 20}}
    faults: {offline: 50%}
groups:
  - {name: model-north, reference: true, vars: {zone: North}, devices: [{type: climate}]}
  - name: new-homes
    sites: 2
    site: "home{n:04}"
    vars: {zone: {choice: [North, South]}}
    devices: [{type: climate}]
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fleet, err := devicesim.New(spec, devicesim.Options{BrokerURL: "mqtt://127.0.0.1:1883", Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer fleet.Close()
	offline := 0
	for _, d := range fleet.Devices() {
		if d.Faults.Offline {
			offline++
		}
		fmt.Println(devicesim.BaseAddress(d.Identifier), d.Group, d.Reference)
	}
	fmt.Println("offline:", offline)
	// Output:
	// mqtt://model-north-climate model-north true
	// mqtt://home0001-climate new-homes false
	// mqtt://home0002-climate new-homes false
	// offline: 1
}

// Mistakes in a fleet file name the file, the line, the path and what was expected.
func ExampleParse_error() {
	_, err := devicesim.Parse("fleet.yaml", []byte(`
types:
  - name: climate
    faults: {offline: 1.5}
groups: [{name: g, devices: [{type: climate}]}]
`))
	fmt.Println(err)
	// Output:
	// devicesim: fleet.yaml:4: types[0].faults.offline: expected a share between 0 and 1 (or 0% to 100%), got "1.5"
}
