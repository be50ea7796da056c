package simbench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/devicesim"
)

// readyPrefix starts the line a broker child prints once it listens.
const readyPrefix = "simbench broker listening on "

// ServeBroker is the child's side of StartBrokerProcess: it runs the embedded
// broker on 127.0.0.1:0 with the credentials file, prints its address on out,
// and serves until ctx ends or stdin closes (the parent exited).
func ServeBroker(ctx context.Context, credentialsFile string, stdin io.Reader, out io.Writer) error {
	creds, err := broker.LoadCredentialsFile(credentialsFile)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := broker.New(broker.Options{TCPAddr: "127.0.0.1:0", Credentials: creds, Logger: log})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		return err
	}
	defer b.Close()
	if _, err := fmt.Fprintf(out, "%s%s\n", readyPrefix, b.Addr()); err != nil {
		return err
	}
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		cancel()
	}()
	<-ctx.Done()
	return nil
}

// BrokerProcess is a broker running in a child process.
type BrokerProcess struct {
	URL   string // mqtt://127.0.0.1:port
	cmd   *exec.Cmd
	stdin io.Closer
}

// StartBrokerProcess starts cmd, which must end up calling ServeBroker, and
// waits for it to listen.
func StartBrokerProcess(ctx context.Context, cmd *exec.Cmd) (*BrokerProcess, error) {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("simbench: broker process: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("simbench: broker process: %w", err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("simbench: start broker process %s: %w", cmd.Path, err)
	}
	p := &BrokerProcess{cmd: cmd, stdin: stdin}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), readyPrefix); ok {
				line <- addr
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		close(line)
	}()
	select {
	case addr, ok := <-line:
		if !ok {
			p.Close()
			return nil, errors.New("simbench: the broker process ended before listening")
		}
		p.URL = "mqtt://" + addr
		return p, nil
	case <-ctx.Done():
		p.Close()
		return nil, fmt.Errorf("simbench: waiting for the broker process: %w", ctx.Err())
	case <-time.After(60 * time.Second):
		p.Close()
		return nil, errors.New("simbench: the broker process did not listen within 60s")
	}
}

// RSSMB returns the broker process's resident memory in MiB.
func (p *BrokerProcess) RSSMB() float64 { return RSSMB(p.cmd.Process.Pid) }

// Close stops the broker process.
func (p *BrokerProcess) Close() error {
	p.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
	return nil
}

// WriteCredentials writes a broker credentials file with every device of the
// fleet (role device) and the server identities (role server).
func WriteCredentials(path string, devices []devicesim.DeviceInfo, servers map[string]string) error {
	ids := make([]broker.Identity, 0, len(devices)+len(servers))
	add := func(name, pw string, role broker.Role) error {
		h, err := broker.HashPassword(pw)
		if err != nil {
			return err
		}
		ids = append(ids, broker.Identity{Name: name, Role: role, PasswordHash: h})
		return nil
	}
	for _, d := range devices {
		if err := add(d.ID, d.Password, broker.RoleDevice); err != nil {
			return err
		}
	}
	for name, pw := range servers {
		if err := add(name, pw, broker.RoleServer); err != nil {
			return err
		}
	}
	if _, err := broker.WriteCredentialsFile(path, ids); err != nil {
		return fmt.Errorf("simbench: write credentials: %w", err)
	}
	return nil
}

// RSSMB returns the resident memory of process pid (0: this process) in MiB,
// from /proc; 0 where /proc is not available.
func RSSMB(pid int) float64 { return statusMB(pid, "VmRSS:") }

// PeakRSSMB returns the peak resident memory (VmHWM) of process pid (0: this
// process) in MiB; 0 where /proc is not available.
func PeakRSSMB(pid int) float64 { return statusMB(pid, "VmHWM:") }

// LoadAverage returns the machine's load average over the last minute, from
// /proc/loadavg; 0 where it is not available.
func LoadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// ResetPeakRSS sets the peak resident memory (VmHWM) of process pid (0: this
// process) back to its current resident memory, so that the next PeakRSSMB
// is the peak of what follows.
func ResetPeakRSS(pid int) error {
	path := "/proc/self/clear_refs"
	if pid != 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/clear_refs"
	}
	if err := os.WriteFile(path, []byte("5"), 0); err != nil {
		return fmt.Errorf("simbench: reset peak memory: %w", err)
	}
	return nil
}

// statusMB reads one kB field of /proc/PID/status, in MiB.
func statusMB(pid int, field string) float64 {
	path := "/proc/self/status"
	if pid != 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}
