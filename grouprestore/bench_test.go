package grouprestore

import (
	"context"
	"fmt"
	"github.com/fleetvault/fleetvault/agent"
	"testing"
)

// BenchmarkRestoreEngine restores b.N devices through the in-process
// transport (no network) with the real on-disk journal: the engine's own
// cost, journal fsyncs included, without the transport's. Every device has a
// registered tag, so tag trust is checked for each.
func BenchmarkRestoreEngine(b *testing.B) {
	t := &testing.T{}
	f := &fleet{t: t, tr: newLoopTransport(), cat: newMemCatalog(), dir: memDirectory{}, devices: map[string]*testDevice{}, journal: b.TempDir() + "/jobs.db"}
	f.cat.add(t, "model-house", "ref-north", climate("North"), northSettings)
	f.cat.add(t, "model-house", "ref-south", climate("South"), southSettings)
	for i := 0; i < b.N; i++ {
		f.device("homes", fmt.Sprintf("home%07d", i), climate([]string{"North", "South"}[i%2]), factory)
		f.dir["homes"][i].Tag = climate([]string{"North", "South"}[i%2]) // registered: tag trust checks every device
	}
	e, err := New(Options{JournalPath: f.journal, CreateJournal: true, Catalog: f.cat, Directory: f.dir, Transports: map[string]agent.Transport{"mqtt": f.tr}})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	b.ResetTimer()
	j, err := e.Start(context.Background(), Spec{Kind: KindRestore, Source: "model-house", Target: "homes", Rollout: Rollout{Concurrency: 512}})
	if err != nil {
		b.Fatal(err)
	}
	p, err := j.Wait(context.Background())
	if err != nil || p.Counts[Restored] != b.N {
		b.Fatalf("%v %v", p.Counts, err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "devices/s")
}
