package server

import (
	"context"
	"crypto/tls"
	"fmt"

	"github.com/fleetvault/fleetvault/agent/mqtt"
	"github.com/fleetvault/fleetvault/identifiers"
)

// MQTTShard is one broker shard (docs/spec/identifiers.md section 9.1): the
// devices whose identifiers carry broker:Name connect to the broker at URL,
// and the server connects there as User with Password (an identity of role
// server at that broker).
type MQTTShard struct {
	Name     string
	URL      string
	User     string
	Password string
	TLS      *tls.Config // for mqtts://; nil uses the system roots
}

// startShards connects to the broker shards in the background, so that a
// shard that is down fails only its own devices, and routes the engine's MQTT
// requests over them and the default broker (s.MQTT).
func (s *Server) startShards(ctx context.Context, shards []MQTTShard) error {
	all := []mqtt.Shard{{Name: identifiers.DefaultBroker, URL: s.brokerURL, Transport: s.MQTT}}
	for _, sh := range shards {
		if !identifiers.ValidBrokerName(sh.Name) {
			return fmt.Errorf("broker shard %q: a name is 1 to 63 letters, digits, '-' or '_'", sh.Name)
		}
		tr, err := mqtt.NewTransport(ctx, mqtt.TransportOptions{BrokerURL: sh.URL, Username: sh.User, Password: sh.Password,
			TLSConfig: sh.TLS, Logger: s.log.With("shard", sh.Name), Background: true})
		if err != nil {
			return fmt.Errorf("broker shard %s: %w", sh.Name, err)
		}
		s.closers = append(s.closers, tr.Close)
		all = append(all, mqtt.Shard{Name: sh.Name, URL: sh.URL, Transport: tr})
	}
	var err error
	s.Shards, err = mqtt.NewShards(all...)
	return err
}

// mqttStats adds up the counters of every MQTT connection.
func (s *Server) mqttStats() mqtt.Stats {
	if s.Shards != nil {
		return s.Shards.Stats()
	}
	return s.MQTT.Stats()
}
