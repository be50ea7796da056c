package main

import (
	"github.com/spf13/cobra"

	"github.com/fleetvault/fleetvault/devicesim/simbench"
)

func newBenchCoAPCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "coap [--devices N] [--json]",
		Short: "Measure CoAP round trips: the transport's ceiling and agent probes",
		Long: `bench coap measures, on loopback, for --duration each:

  ceiling  the agent/coap transport sends GETs to --devices minimal endpoints
           (one UDP port and goroutine each, go-coap's coder) that answer at
           once, without routing, agent handler or device
  probe    READ:SETTINGS?TAG through the agent/coap transport to --devices
           simulated CoAP devices (agent/coap's device server, one port each)

with at most --concurrency round trips outstanding, alternating --rounds
times; the two fleets never run at once. It prints devices, ceiling_rt_per_s, probe_rt_per_s, ratio, rss_mb,
seconds, requests and errors. Targets: ratio at least 0.8; at least 15,000
probes/s at 10,000 devices.

Example:

  fleetvault bench coap --devices 10000 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := benchConfig(a)
			if err != nil {
				return err
			}
			return runBenchTransport(cmd.Context(), a, cfg, simbench.RunCoAP)
		},
	}
	benchTransportFlags(c)
	return c
}
