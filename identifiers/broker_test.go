package identifiers

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

// brokerVectorsPath holds the broker-shard vectors of docs/spec/identifiers.md
// section 9.1.
const brokerVectorsPath = "../docs/spec/vectors/broker-shards.json"

type brokerVector struct {
	Comment string  `json:"comment"`
	Input   string  `json:"input"`
	Broker  *string `json:"broker"`
	Error   string  `json:"error"`
}

func TestBrokerVectors(t *testing.T) {
	b, err := os.ReadFile(brokerVectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var vs []brokerVector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatalf("%s: %v", brokerVectorsPath, err)
	}
	if len(vs) == 0 {
		t.Fatalf("%s: no vectors", brokerVectorsPath)
	}
	for i, v := range vs {
		t.Run(strings.ReplaceAll(v.Input, "/", "_")+"#"+itoa(i), func(t *testing.T) {
			id, err := Parse(v.Input)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got, err := id.Broker()
			switch {
			case v.Broker != nil && v.Error != "":
				t.Fatal("vector has both broker and error")
			case v.Broker != nil:
				if err != nil || got != *v.Broker {
					t.Fatalf("Broker() = %q, %v; want %q", got, err, *v.Broker)
				}
				if p := id.BrokerParam(); (p == "") != (got == "") {
					t.Errorf("BrokerParam() = %q with broker %q", p, got)
				}
				// A request built from the identifier routes to the same shard.
				back, err := Parse(id.String())
				if b2, _ := back.Broker(); err != nil || b2 != got {
					t.Errorf("canonical form %q names broker %q (%v), want %q", id.String(), b2, err, got)
				}
			case v.Error != "":
				if err == nil || !errors.Is(err, ErrBrokerParam) || !strings.Contains(err.Error(), v.Error) {
					t.Fatalf("Broker() = %q, %v; want an ErrBrokerParam containing %q", got, err, v.Error)
				}
			default:
				t.Fatal("vector has neither broker nor error")
			}
		})
	}
}
