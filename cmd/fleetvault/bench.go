package main

import "github.com/spf13/cobra"

// newBenchCommand groups the benchmarks. Each prints JSON with --json; their
// figures are recorded in docs/BENCHMARKS.md with the command that produced them.
func newBenchCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "bench",
		Short: "Measure Fleetvault's speed and memory on this machine",
		Args:  cobra.NoArgs,
	}
	c.AddCommand(
		// benchmark subcommands are added here, one line each
		newBenchDedupeCommand(a),
		newBenchCatalogCommand(a),
		newBenchMQTTCommand(a), newBenchCoAPCommand(a),
		newBenchRestoreCommand(a),
		newBenchFleetChildCommand(a),
	)
	return c
}
