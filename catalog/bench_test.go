package catalog

import (
	"context"
	"fmt"
	"testing"
)

// benchCatalog: 1,000 clients x 20 backups.
func benchCatalog(b *testing.B) *Catalog {
	c, _ := mustCreate(b, Options{})
	ps := fixturePieces(1000, 20)
	for i := 0; i < len(ps); i += 5000 {
		mustIngest(b, c, ps[i:min(i+5000, len(ps))])
	}
	var ds []Device
	for i := 1; i <= 1000; i++ {
		ds = append(ds, Device{ID: fmt.Sprintf("home%d", i), PasswordHash: "$2a$10$abcdefghijklmnopqrstuv", Role: RoleDevice})
	}
	if err := c.PutDevices(context.Background(), ds); err != nil {
		b.Fatal(err)
	}
	return c
}

func BenchmarkLatest(b *testing.B) {
	c := benchCatalog(b)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := c.Latest(fmt.Sprintf("home%d", 1+i%1000)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDevice is the broker's credentials lookup on every connect.
func BenchmarkDevice(b *testing.B) {
	c := benchCatalog(b)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := c.Device(fmt.Sprintf("home%d", 1+i%1000)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTagInGroup(b *testing.B) {
	c := benchCatalog(b)
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Pieces(Query{Group: "North Device Backup", TagKey: "model", TagValue: "T1", Limit: 10}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIngest1000 ingests 1,000 pieces per op: one commit.
func BenchmarkIngest1000(b *testing.B) {
	c, _ := mustCreate(b, Options{})
	ps := fixturePieces(1000, 1)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for j := range ps {
			ps[j].Time = t0.Add(timeStep(i))
		}
		mustIngest(b, c, ps)
	}
}
