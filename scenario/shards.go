package scenario

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/broker/mosquittoconf"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/devicesim"
	"github.com/fleetvault/fleetvault/devicesim/simbench"
	"github.com/fleetvault/fleetvault/identifiers"
	"github.com/fleetvault/fleetvault/server"
)

// Kinds of broker shard a benchmark starts.
const (
	ShardEmbedded  = "embedded"  // fleetvault broker processes
	ShardMosquitto = "mosquitto" // Mosquitto processes with generated configurations
)

// benchServerUser is the server identity a benchmark's shards know.
const benchServerUser = "fleetvault-bench"

// shardSet is a benchmark's broker shards: planned (names and free ports)
// before the server starts, so the server and the fleet children know their
// URLs, and started once the devices are provisioned, so that each shard
// starts with its devices' credentials.
type shardSet struct {
	kind     string
	dir      string
	names    []string
	addrs    []string
	password string // the server identity's
	procs    []*shardProc
}

// shardProc is a running shard process.
type shardProc struct {
	cmd    *exec.Cmd
	out    *tailBuffer
	exited chan struct{} // closed when it has exited
}

// planShards picks the shards' names and loopback ports.
func planShards(cfg BenchConfig, dir string) (*shardSet, error) {
	if cfg.ShardKind != ShardEmbedded && cfg.ShardKind != ShardMosquitto {
		return nil, fmt.Errorf("shard kind %q: give %s or %s", cfg.ShardKind, ShardEmbedded, ShardMosquitto)
	}
	if cfg.ShardKind == ShardEmbedded && cfg.Broker == nil {
		return nil, errors.New("embedded shards need BenchConfig.Broker (the fleetvault broker command)")
	}
	if cfg.ShardKind == ShardMosquitto {
		if _, err := exec.LookPath("mosquitto"); err != nil {
			return nil, errors.New("mosquitto shards need mosquitto (Debian: apt-get install mosquitto)")
		}
	}
	if per := (cfg.Devices + cfg.Shards - 1) / cfg.Shards; per > fdBudget() {
		return nil, fmt.Errorf("%d MQTT devices over %d shards is %d connections per shard process, over the open-file limit of %d (ulimit -n); give more --shards", cfg.Devices, cfg.Shards, per, fdBudget())
	}
	s := &shardSet{kind: cfg.ShardKind, dir: filepath.Join(dir, "shards"), password: broker.NewSecret()}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, err
	}
	for i := range cfg.Shards {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s.names = append(s.names, fmt.Sprintf("s%d", i))
		s.addrs = append(s.addrs, fmt.Sprintf("127.0.0.1:%d", port))
	}
	return s, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port for a broker shard: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// url is where shard i listens.
func (s *shardSet) url(i int) string { return "mqtt://" + s.addrs[i] }

// serverShards is the server's configuration of the shards.
func (s *shardSet) serverShards() []server.MQTTShard {
	out := make([]server.MQTTShard, len(s.names))
	for i, n := range s.names {
		out[i] = server.MQTTShard{Name: n, URL: s.url(i), User: benchServerUser, Password: s.password}
	}
	return out
}

// route gives the devices of fleet child i (on shard i mod N) identifiers
// naming their shard.
func (s *shardSet) route(child int, devs []devicesim.DeviceInfo) {
	param := identifiers.ParamBroker + ":" + s.names[child%len(s.names)]
	for i := range devs {
		id := identifiers.ReadTag(devicesim.TransportMQTT, devs[i].ID, 0)
		id.Params = append(id.Params, param)
		devs[i].Identifier = id
	}
}

// start provisions the server identity, writes each shard's credentials and
// starts the shard processes, then waits until the server is connected to
// every shard.
func (s *shardSet) start(ctx context.Context, cfg BenchConfig, srv *server.Server, children []*fleetChild) error {
	h, err := broker.HashPassword(s.password)
	if err != nil {
		return err
	}
	if err := srv.Catalog.PutDevices(ctx, []catalog.Device{{ID: benchServerUser, Role: "server", PasswordHash: h}}); err != nil {
		return err
	}
	if s.kind == ShardEmbedded {
		if _, err := server.ExportShardCredentials(srv.Catalog, s.dir, s.names); err != nil {
			return err
		}
	}
	for i, name := range s.names {
		var cmd *exec.Cmd
		if s.kind == ShardEmbedded {
			cmd = cfg.Broker("--listen", s.addrs[i], "--credentials", server.ShardCredentialsFile(s.dir, name), "--reload", "1h")
		} else if cmd, err = s.mosquitto(i, children); err != nil {
			return err
		}
		p := &shardProc{cmd: cmd, out: &tailBuffer{}, exited: make(chan struct{})}
		cmd.Stdout, cmd.Stderr = nil, p.out
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("broker shard %s: start: %w", name, err)
		}
		go func() { _ = cmd.Wait(); close(p.exited) }()
		s.procs = append(s.procs, p)
	}
	return s.waitConnected(ctx, srv)
}

// mosquitto writes shard i's Mosquitto configuration, with the secrets of
// its devices and of the server, and returns the command that runs it.
func (s *shardSet) mosquitto(i int, children []*fleetChild) (*exec.Cmd, error) {
	ids := []mosquittoconf.Identity{{Name: benchServerUser, Password: s.password, Server: true}}
	for c, ch := range children {
		if c%len(s.names) != i {
			continue
		}
		for _, d := range ch.devices {
			ids = append(ids, mosquittoconf.Identity{Name: d.ID, Password: d.Password})
		}
	}
	dir := filepath.Join(s.dir, s.names[i])
	conf := mosquittoconf.Config{Listen: s.addrs[i], Identities: ids}
	if os.Geteuid() == 0 {
		conf.User = "root"
	}
	if err := mosquittoconf.Write(dir, conf); err != nil {
		return nil, fmt.Errorf("broker shard %s: %w", s.names[i], err)
	}
	return exec.Command("mosquitto", "-c", filepath.Join(dir, mosquittoconf.ConfFile)), nil
}

// waitConnected polls until the server's transport to every shard is
// connected and subscribed, or a shard process has exited.
func (s *shardSet) waitConnected(ctx context.Context, srv *server.Server) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		waiting := -1
		for i, n := range s.names {
			select {
			case <-s.procs[i].exited:
				return fmt.Errorf("broker shard %s exited: %s", n, s.procs[i].out)
			default:
			}
			if sh, ok := srv.Shards.Shard(n); ok && !sh.Transport.Connected() {
				waiting = i
			}
		}
		if waiting < 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server did not connect to broker shard %s at %s within 60 s: %s", s.names[waiting], s.addrs[waiting], s.procs[waiting].out)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// peakRSSMB adds up the shard processes' peak resident memory.
func (s *shardSet) peakRSSMB() float64 {
	var mb float64
	for _, p := range s.procs {
		mb += simbench.PeakRSSMB(p.cmd.Process.Pid)
	}
	return mb
}

// close stops the shard processes.
func (s *shardSet) close() {
	for _, p := range s.procs {
		_ = p.cmd.Process.Signal(os.Interrupt)
	}
	for _, p := range s.procs {
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
}

// tailBuffer keeps the last few KiB a process wrote, for error messages.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := strings.TrimSpace(string(t.b)); s != "" {
		return s
	}
	return "(no output)"
}
