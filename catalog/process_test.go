package catalog

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv selects what the re-executed test binary does (see TestChild).
const childEnv = "FLEETVAULT_CATALOG_TEST_CHILD"

// TestChild is not a test: it is the body of a subprocess started by other
// tests, selected by childEnv.
func TestChild(t *testing.T) {
	mode := os.Getenv(childEnv)
	if mode == "" {
		t.Skip("runs only as a subprocess")
	}
	mbr := os.Getenv("FLEETVAULT_MBR")
	switch mode {
	case "list":
		childList(mbr)
	case "ingest":
		childIngest(mbr)
	}
	os.Exit(0)
}

// childList prints what a fresh process sees in the installation.
func childList(mbr string) {
	c, err := Open(mbr, Options{ReadOnly: true})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	defer c.Close()
	ps, err := c.Pieces(Query{})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	var devs []string
	_ = c.Devices(func(d Device) error { devs = append(devs, d.ID); return nil })
	out, _ := json.Marshal(map[string]any{"pieces": len(ps), "devices": devs, "latest": ps[0].ID})
	fmt.Println(string(out))
}

// childIngest ingests batches forever, printing each acknowledged batch's ids.
func childIngest(mbr string) {
	c, err := Open(mbr, Options{})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	for b := 0; ; b++ {
		ps := fixturePieces(50, 1)
		for i := range ps {
			ps[i].Client = fmt.Sprintf("b%d-%s", b, ps[i].Client)
			ps[i].Content = []byte(fmt.Sprintf("batch %d piece %d", b, i))
		}
		out, err := c.Ingest(context.Background(), ps)
		if err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		ids := make([]string, len(out))
		for i, p := range out {
			ids[i] = p.ID
		}
		fmt.Println("ACK", strings.Join(ids, ","))
	}
}

func child(t *testing.T, mode, mbr string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, "FLEETVAULT_MBR="+mbr)
	return cmd
}

func TestOtherProcessSeesInstallation(t *testing.T) {
	c, mbr := mustCreate(t, Options{})
	mustIngest(t, c, fixturePieces(3, 2))
	if err := c.PutDevices(context.Background(), []Device{{ID: "home1"}, {ID: "home2"}}); err != nil {
		t.Fatal(err)
	}
	latest, err := c.Pieces(Query{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	// A copy elsewhere works too: MBR paths are relative.
	copied := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-a", filepath.Dir(mbr), copied).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	for name, path := range map[string]string{"original": mbr, "copy": filepath.Join(copied, MBRFile)} {
		t.Run(name, func(t *testing.T) {
			out, err := child(t, "list", path).Output()
			if err != nil {
				t.Fatalf("child: %v: %s", err, out)
			}
			var got struct {
				Pieces  int
				Devices []string
				Latest  string
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("child output %q: %v", out, err)
			}
			if got.Pieces != 6 || len(got.Devices) != 2 || got.Latest != latest[0].ID {
				t.Fatalf("child saw %+v", got)
			}
		})
	}
}

// TestKillDuringIngest SIGKILLs a process in the middle of ingesting and
// checks that every batch it acknowledged survived and the store is sound.
func TestKillDuringIngest(t *testing.T) {
	c, mbr := mustCreate(t, Options{})
	c.Close()
	cmd := child(t, "ingest", mbr)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var acked []string
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	want := 20
	if testing.Short() {
		want = 5
	}
	for batches := 0; batches < want && sc.Scan(); {
		line := sc.Text()
		if ids, ok := strings.CutPrefix(line, "ACK "); ok {
			acked = append(acked, strings.Split(ids, ",")...)
			batches++
		} else if strings.HasPrefix(line, "ERROR") {
			t.Fatalf("child: %s", line)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Lines printed before the kill landed are acknowledged too.
	for sc.Scan() {
		if ids, ok := strings.CutPrefix(sc.Text(), "ACK "); ok {
			acked = append(acked, strings.Split(ids, ",")...)
		}
	}
	_ = cmd.Wait()
	if len(acked) == 0 {
		t.Fatal("child acknowledged nothing")
	}

	if ps := verify(t, mbr, true); len(ps) != 0 {
		t.Fatalf("problems after kill -9: %v", ps)
	}
	c, err = Open(mbr, Options{ReadOnly: true, LockTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, id := range acked {
		if _, err := c.Piece(id); err != nil {
			t.Fatalf("acknowledged piece %s lost: %v", id, err)
		}
	}
	t.Logf("%d acknowledged pieces all present", len(acked))
}
