package server

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/grouprestore"
)

// DefaultShardCredentialsEvery is how often a server re-exports its shards'
// credentials files: the longest a device added to the resource database
// waits before its shard lets it in (fleetvault broker re-reads a changed
// file within its own --reload interval on top).
const DefaultShardCredentialsEvery = 10 * time.Second

// ShardCredentials reads the resource database once and returns, for each
// named shard, the identities its broker must know: the devices whose
// identifiers name it (docs/spec/identifiers.md section 9.1) and every
// server identity (role server), which connects to every shard. Devices of
// other shards, and devices without MQTT credentials, are left out. A device
// whose identifier does not parse is an error naming it.
func ShardCredentials(c *catalog.Catalog, shards []string) (map[string][]broker.Identity, error) {
	out := make(map[string][]broker.Identity, len(shards))
	for _, s := range shards {
		out[s] = nil
	}
	var servers []broker.Identity
	err := c.Devices(func(d catalog.Device) error {
		id, ok := identityOf(d)
		if !ok {
			return nil
		}
		if id.Role == broker.RoleServer {
			servers = append(servers, id)
			return nil
		}
		ident, err := grouprestore.DeviceIdentifier(d.ID, d.Identifier)
		if err != nil {
			return err
		}
		if ident.Scheme != "" && ident.Scheme != "mqtt" && ident.Scheme != "mqtts" {
			return nil
		}
		name, err := ident.Broker()
		if err != nil {
			return fmt.Errorf("device %s: identifier %s: %w", d.ID, ident, err)
		}
		if ids, want := out[name]; want {
			out[name] = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("shard credentials: %w", err)
	}
	for s := range out {
		out[s] = append(out[s], servers...)
	}
	return out, nil
}

// ShardCredentialsFile is where a server exports shard's credentials in dir.
func ShardCredentialsFile(dir, shard string) string {
	return filepath.Join(dir, shard+".credentials.yaml")
}

// ExportShardCredentials writes the credentials file of each shard into dir
// (ShardCredentialsFile), atomically, rewriting only those that changed. It
// returns the names of the shards whose file changed.
func ExportShardCredentials(c *catalog.Catalog, dir string, shards []string) ([]string, error) {
	creds, err := ShardCredentials(c, shards)
	if err != nil {
		return nil, err
	}
	var changed []string
	for _, s := range shards {
		ch, err := broker.WriteCredentialsFile(ShardCredentialsFile(dir, s), creds[s])
		if err != nil {
			return changed, fmt.Errorf("broker shard %s: %w", s, err)
		}
		if ch {
			changed = append(changed, s)
		}
	}
	return changed, nil
}

// exportShardCredentials keeps the shards' credentials files in dir up to
// date until ctx ends, every every.
func (s *Server) exportShardCredentials(ctx context.Context, dir string, shards []MQTTShard, every time.Duration) {
	names := shardNames(shards)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if changed, err := ExportShardCredentials(s.Catalog, dir, names); err != nil {
			s.log.Error("export the broker shards' credentials", "dir", dir, "err", err)
		} else if len(changed) > 0 {
			s.log.Info("exported broker shard credentials", "dir", dir, "shards", changed)
		}
	}
}

func shardNames(shards []MQTTShard) []string {
	names := make([]string, len(shards))
	for i, sh := range shards {
		names[i] = sh.Name
	}
	return names
}
