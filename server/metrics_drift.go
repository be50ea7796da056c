package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetvault/fleetvault/grouprestore"
)

func newDriftGauge() *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "fleetvault_devices_drifted",
		Help: "Devices found drifted by the last drift job that ended on each device group.",
	}, []string{"group"})
}

// setDrifted records a finished drift job's drifted count for its group.
func (m *metrics) setDrifted(spec grouprestore.Spec, p grouprestore.Progress) {
	if spec.Kind != grouprestore.KindDrift || !p.State.Final() {
		return
	}
	m.drifted.WithLabelValues(spec.Target).Set(float64(p.Counts[grouprestore.Drifted]))
}
