package identifiers_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/fleetvault/fleetvault/identifiers"
)

func ExampleParse() {
	id, err := identifiers.Parse("10.10.11.44:6543?WRITE:IP:10.10.11.45,dedupe,<backup catalog info>?/mtree/backup/<client-id>")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(id.Address, id.Port, id.Method)
	for i, p := range id.Params {
		fmt.Printf("param %d: %s\n", i, p)
	}
	fmt.Println(id.Location)
	ip, _ := id.ParamValue("IP")
	fmt.Println("backup media:", ip)
	// Output:
	// 10.10.11.44 6543 WRITE
	// param 0: IP:10.10.11.45
	// param 1: dedupe
	// param 2: <backup catalog info>
	// /mtree/backup/<client-id>
	// backup media: 10.10.11.45
}

// The settings form with ':' before the location parses to the same parts as
// the '?' form, and String writes the canonical '?' form.
func ExampleParse_settingsForm() {
	id, _ := identifiers.Parse("10.10.33.35:8890?WRITE:SETTINGS,<catalog specs>:TAG+SETTINGS")
	fmt.Printf("%s %q %s\n", id.Method, id.Params, id.Location)
	fmt.Println(id)
	// Output:
	// WRITE ["SETTINGS" "<catalog specs>"] TAG+SETTINGS
	// 10.10.33.35:8890?WRITE:SETTINGS,<catalog specs>?TAG+SETTINGS
}

func ExampleParse_error() {
	_, err := identifiers.Parse("10.10.11.44:?READ:SETTINGS?TAG")
	fmt.Println(err)
	var se *identifiers.SyntaxError
	if errors.As(err, &se) {
		fmt.Println("column", se.Column)
	}
	// Output:
	// identifier "10.10.11.44:?READ:SETTINGS?TAG" column 13: expected a port number (1-65535) after ':'
	// column 13
}

func ExampleRewrite() {
	rules, err := identifiers.ReadReplication(strings.NewReader(`
replication:
  - local: 10.10.11.44:6543
    remote: 10.50.4.4:3456
  - local: 10.10.11.45
    remote: 10.50.4.4
`), "replication.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	id := identifiers.MustParse("10.10.11.44:6543?WRITE:IP:10.10.11.45,dedupe,<more params>?/mtree/backup/<client-id>")
	fmt.Println(identifiers.Rewrite(id, rules))
	// Output:
	// 10.50.4.4:3456?WRITE:IP:10.50.4.4,dedupe,<more params>?/mtree/backup/<client-id>
}

func ExampleReadTag() {
	fmt.Println(identifiers.ReadTag("mqtt", "home0001-climate", 0))
	fmt.Println(identifiers.WriteSettings("coap", "127.0.0.1", 5683))
	// Output:
	// mqtt://home0001-climate?READ:SETTINGS?TAG
	// coap://127.0.0.1:5683?WRITE:SETTINGS?TAG+SETTINGS
}
