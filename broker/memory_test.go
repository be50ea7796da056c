package broker_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"

	"github.com/fleetvault/fleetvault/broker"
	"github.com/fleetvault/fleetvault/broker/brokertest"
)

// Environment of TestBrokerMemoryPerClient's child process.
const (
	envChildAddr = "FLEETVAULT_BROKER_CHILD_ADDR"
	envChildN    = "FLEETVAULT_BROKER_CHILD_N"
	envSecret    = "FLEETVAULT_BROKER_CHILD_SECRET"
)

// TestBrokerMemoryPerClient measures the broker's own memory per idle
// device connection (issue 14): the clients run in a child process, so the
// figure is the broker's alone and 10,000 connections fit under a 20,000
// open-file limit. FLEETVAULT_BROKER_CONNS sets the count (default 10,000);
// FLEETVAULT_BROKER_HEAPPROFILE=dir writes a heap profile per case.
func TestBrokerMemoryPerClient(t *testing.T) {
	n := connsFromEnv(t, scaleConns(10_000))
	needFiles(t, n)
	creds, _, secret := manyDevices(t, n)
	for _, tc := range []struct {
		name string
		opts broker.Options
	}{
		{"tuned defaults", broker.Options{}},
		{"small IoT buffers", broker.Options{ReadBufferSize: 256, WriteBufferSize: 512, MaxPendingWrites: 32, MaxInflight: 64}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Credentials = creds
			b := brokertest.StartOptions(t, tc.opts)
			heap0, stack0 := memInUse()
			stop := startClients(t, b.Addr().String(), n, secret)
			defer stop()
			poll(t, "all connected", func() bool { return b.Stats().Connected == int64(n) })
			heap1, stack1 := memInUse()
			heap, stack := float64(heap1-heap0)/float64(n), float64(stack1-stack0)/float64(n)
			t.Logf("%d idle device connections: broker %.0f bytes/connection (heap %.0f + stacks %.0f); 100,000 devices: %.2f GiB",
				n, heap+stack, heap, stack, (heap+stack)*100000/(1<<30))
			if dir := os.Getenv("FLEETVAULT_BROKER_HEAPPROFILE"); dir != "" {
				writeHeapProfile(t, dir+"/"+strings.ReplaceAll(tc.name, " ", "-")+".pprof")
			}
		})
	}
}

func writeHeapProfile(t *testing.T, path string) {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
	t.Logf("heap profile: %s", path)
}

// startClients runs n lean device clients in a child process (this test
// binary again) and returns a function that ends it.
func startClients(t *testing.T, addr string, n int, secret string) (stop func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLeanClientsChild$", "-test.v")
	cmd.Env = append(os.Environ(), envChildAddr+"="+addr, envChildN+"="+strconv.Itoa(n), envSecret+"="+secret)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop = func() {
		stdin.Close()
		_ = cmd.Wait()
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if line == "clients ready" {
			go func() {
				for sc.Scan() { // drain
				}
			}()
			return stop
		}
		if strings.HasPrefix(line, "clients failed") {
			stop()
			t.Fatal(line)
		}
	}
	stop()
	t.Fatal("client process ended before its clients were ready")
	return nil
}

// TestLeanClientsChild is the child process of TestBrokerMemoryPerClient;
// it does nothing in a normal run.
func TestLeanClientsChild(t *testing.T) {
	addr := os.Getenv(envChildAddr)
	if addr == "" {
		t.Skip("child process of TestBrokerMemoryPerClient only")
	}
	n, _ := strconv.Atoi(os.Getenv(envChildN))
	conns := make([]net.Conn, 0, n)
	for i := range n {
		c, err := leanConnect(addr, deviceName(i), os.Getenv(envSecret))
		if err != nil {
			fmt.Printf("clients failed after %d: %v\n", i, err)
			return
		}
		conns = append(conns, c)
	}
	fmt.Println("clients ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes stdin
	for _, c := range conns {
		c.Close()
	}
}
