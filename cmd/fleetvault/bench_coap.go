package main

import (
	"github.com/spf13/cobra"

	"github.com/fleetvault/fleetvault/devicesim/simbench"
)

func newBenchCoAPCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "coap [--devices N] [--insecure-coap] [--json]",
		Short: "Measure CoAP round trips: the transport's ceiling and agent probes",
		Long: `bench coap measures, on loopback, for --duration each:

  ceiling  the agent/coap transport sends GETs to --devices minimal endpoints
           (one UDP port and goroutine each, go-coap's coder) that answer at
           once, without routing, agent handler or device
  probe    READ:SETTINGS?TAG through the agent/coap transport to --devices
           simulated CoAP devices (agent/coap's device server, one port each),
           over DTLS with a pre-shared key per device (coaps://), or plain
           CoAP with --insecure-coap

with at most --concurrency round trips outstanding, alternating --rounds
times; the two fleets never run at once. Over DTLS the sessions are set up
during the warm-up; the handshake is measured apart: a fresh transport
probes every device once (a handshake and a probe each). It prints devices,
ceiling_rt_per_s, probe_rt_per_s, ratio, rss_mb, seconds, requests, errors,
cpu_us_per_probe (the process's CPU, devices and transport together) and,
over DTLS, handshakes_per_s and cpu_us_per_handshake. Targets: ratio at
least 0.8; at least 15,000 probes/s at 10,000 devices.

Example:

  fleetvault bench coap --devices 10000 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := benchConfig(a)
			if err != nil {
				return err
			}
			cfg.InsecureCoAP = a.v.GetBool("insecure-coap")
			return runBenchTransport(cmd.Context(), a, cfg, simbench.RunCoAP)
		},
	}
	benchTransportFlags(c)
	c.Flags().Bool("insecure-coap", false, "probe over plain CoAP instead of DTLS, to measure what DTLS costs")
	return c
}
