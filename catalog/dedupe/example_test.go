package dedupe_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/fleetvault/fleetvault/catalog/dedupe"
	"github.com/fxamacker/cbor/v2"
	"go.etcd.io/bbolt"
)

// Ten devices back up the same settings: the store keeps one object with ten
// references, and releasing them all reclaims it.
func Example() {
	dir, err := os.MkdirTemp("", "dedupe-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := bbolt.Open(filepath.Join(dir, "store.db"), 0o600, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	// Devices send deterministic CBOR (agent.EncodeSettings), so equal
	// settings are equal bytes.
	enc, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		log.Fatal(err)
	}
	settings, err := enc.Marshal(map[string]any{"setpoint": 21.5, "mode": "auto"})
	if err != nil {
		log.Fatal(err)
	}
	s := dedupe.New(dedupe.Options{})
	var ref dedupe.Ref
	err = db.Update(func(tx *bbolt.Tx) error {
		if err := s.Init(tx); err != nil {
			return err
		}
		for range 10 {
			if ref, _, err = s.Put(tx, settings); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}

	err = db.Update(func(tx *bbolt.Tx) error {
		data, err := s.Get(tx, ref)
		if err != nil {
			return err
		}
		var back map[string]any
		if err := cbor.Unmarshal(data, &back); err != nil {
			return err
		}
		st, err := s.Stats(tx)
		if err != nil {
			return err
		}
		fmt.Printf("setpoint %v, %d object, %d references\n", back["setpoint"], st.Objects, st.References)
		for range 10 {
			if _, err := s.Release(tx, ref); err != nil {
				return err
			}
		}
		st, err = s.Stats(tx)
		fmt.Printf("after release: %d objects\n", st.Objects)
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// setpoint 21.5, 1 object, 10 references
	// after release: 0 objects
}
