package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fleetvault/fleetvault/catalog/catalogbench"
)

func newBenchCatalogCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "catalog [--records N] [--json]",
		Short: "Build a large catalog and time its queries and its opening",
		Long: `bench catalog builds a catalog of --records pieces with batched ingest
(--batch pieces per commit; 100 backups per client, 10 clients per backup
group), then times, --queries times each: the latest backup of a client,
the pieces with a model tag within a backup group (--limit newest), and the
newest piece per client of a group; and the time to open the catalog.
Targets: p99 at most 1 ms, open at most 1 s.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := catalogbench.Config{Records: a.v.GetInt("records"), Batch: a.v.GetInt("batch"),
				Queries: a.v.GetInt("queries"), Limit: a.v.GetInt("limit"), Dir: a.v.GetString("dir")}
			return runBenchCatalog(cmd, a, cfg, a.v.GetBool("json"))
		},
	}
	f := c.Flags()
	f.Int("records", 1_000_000, "pieces in the catalog")
	f.Int("batch", 10_000, "pieces per Ingest call (one commit each)")
	f.Int("queries", 10_000, "timed queries of each kind")
	f.Int("limit", 10, "newest pieces returned by the tag query")
	f.String("dir", "", "directory to build in (default: a temporary directory, removed after)")
	f.Bool("json", false, "print the result as JSON")
	return c
}

func runBenchCatalog(cmd *cobra.Command, a *app, cfg catalogbench.Config, asJSON bool) error {
	if cfg.Records <= 0 || cfg.Batch <= 0 || cfg.Queries <= 0 {
		return usageError{fmt.Errorf("bench catalog: --records, --batch and --queries must be positive")}
	}
	res, err := catalogbench.Run(cmd.Context(), cfg, a.log)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(a.stdout, res)
	}
	fmt.Fprintf(a.stdout, "%d records, %d clients, %d groups: ingest %.1fs (%.0f records/s, batch %d), file %d MB, open %.1f ms\n",
		res.Records, res.Clients, res.Groups, res.IngestSeconds, res.IngestPerS, res.Batch, res.FileBytes>>20, res.OpenMillis)
	for _, l := range []struct {
		name string
		l    catalogbench.Latency
	}{{"latest of a client", res.Latest}, {"tag within a group", res.TagInGroup}, {"candidates of a group", res.Candidates}} {
		fmt.Fprintf(a.stdout, "%-22s p50 %7.1f us  p99 %7.1f us  max %8.1f us  (%.1f results)\n", l.name, l.l.P50, l.l.P99, l.l.Max, l.l.Avg)
	}
	return nil
}
