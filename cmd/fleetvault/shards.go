package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/viper"

	"github.com/fleetvault/fleetvault/identifiers"
	"github.com/fleetvault/fleetvault/server"
)

// shardKeys are the keys of an mqtt.shards entry.
var shardKeys = map[string]bool{"name": true, "url": true, "user": true, "password_file": true}

// shardOptions reads mqtt.shards: a list of {name, url, user, password_file}
// (docs/broker.md, "Broker shards"). Errors name the entry and the field.
func shardOptions(v *viper.Viper) ([]server.MQTTShard, error) {
	raw := v.Get("mqtt.shards")
	if raw == nil {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, configError(v.ConfigFileUsed(), "mqtt.shards", fmt.Errorf("want a list of {name, url, user, password_file}, not %T", raw))
	}
	var out []server.MQTTShard
	seen := map[string]bool{}
	for i, e := range list {
		fail := func(format string, a ...any) ([]server.MQTTShard, error) {
			return nil, configError(v.ConfigFileUsed(), "mqtt.shards", fmt.Errorf("entry %d: %s", i+1, fmt.Sprintf(format, a...)))
		}
		m, ok := e.(map[string]any)
		if !ok {
			return fail("want a mapping with name, url, user and password_file")
		}
		var unknown []string
		for k := range m {
			if !shardKeys[k] {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			return fail("unknown key %s (expected name, url, user, password_file)", strings.Join(unknown, ", "))
		}
		str := func(k string) string { s, _ := m[k].(string); return s }
		sh := server.MQTTShard{Name: str("name"), URL: str("url"), User: str("user")}
		switch {
		case !identifiers.ValidBrokerName(sh.Name):
			return fail("name %q: 1 to 63 letters, digits, '-' or '_'", sh.Name)
		case seen[sh.Name]:
			return fail("name %q appears twice", sh.Name)
		case sh.URL == "":
			return fail("shard %s: no url (mqtt://host:port or mqtts://host:port)", sh.Name)
		}
		seen[sh.Name] = true
		if pf := str("password_file"); pf != "" {
			b, err := os.ReadFile(pf)
			if err != nil {
				return fail("shard %s: password_file: %v", sh.Name, err)
			}
			sh.Password = strings.TrimRight(string(b), "\r\n")
		}
		out = append(out, sh)
	}
	return out, nil
}
