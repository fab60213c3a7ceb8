package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	ctdclient "github.com/containerd/containerd"
	"github.com/containerd/containerd/leases"
	"github.com/containerd/containerd/namespaces"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
)

// TestInspectFIFOStops runs the real ferry inspect on a FIFO that nobody
// writes to, and on one whose writer stalls after a few blocks: SIGINT and
// SIGTERM each end it promptly with a failure, leaving nothing behind.
func TestInspectFIFOStops(t *testing.T) {
	head, err := os.ReadFile(testbundle.Write(t, filepath.Join(t.TempDir(), "b.tar"), map[string]testbundle.Image{
		"example.com/app:1": testimages.Image(t, "linux/amd64"),
	}))
	if err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		for _, stall := range []bool{false, true} {
			t.Run(sig.String()+map[bool]string{false: " no writer", true: " stalled writer"}[stall], func(t *testing.T) {
				tmp := t.TempDir()
				fifo := filepath.Join(t.TempDir(), "fifo")
				if err := syscall.Mkfifo(fifo, 0o600); err != nil {
					t.Fatal(err)
				}
				cmd := ferryCommand(t, "inspect", fifo)
				cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				if stall {
					w := openWriter(t, fifo)
					defer w.Close()
					w.Write(head[:4096])
				}
				time.Sleep(300 * time.Millisecond)
				if err := cmd.Process.Signal(sig); err != nil {
					t.Fatal(err)
				}
				switch err := waitFor(cmd, 10*time.Second); {
				case errors.Is(err, errStillRunning):
					t.Errorf("ferry inspect ignored %s: %v", sig, err)
				case err == nil:
					t.Error("ferry inspect succeeded on an unfinished FIFO")
				}
				if names, _ := os.ReadDir(tmp); len(names) > 0 {
					t.Errorf("--tmp-dir holds %v", names)
				}
			})
		}
	}
}

// ferryCommand is the command `ferry args...` of the installed binary.
func ferryCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	bin, err := ferryBinary()
	if err != nil {
		t.Fatal(err)
	}
	return exec.Command(bin, args...)
}

// openWriter opens the write end of a FIFO that a ferry process is to
// read, failing the test if none opens it for reading within 10s.
func openWriter(t *testing.T, fifo string) *os.File {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		fd, err := unix.Open(fifo, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err == nil {
			if err := unix.SetNonblock(fd, false); err != nil {
				t.Fatal(err)
			}
			return os.NewFile(uintptr(fd), fifo)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ferry reads %s: %v", fifo, err)
		}
	}
}

// errStillRunning is waitFor's error for a process it had to kill.
var errStillRunning = errors.New("still running")

// waitFor waits for cmd and returns its error (non-nil for a non-zero
// exit), or kills it after timeout and returns errStillRunning.
func waitFor(cmd *exec.Cmd, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("%w after %s", errStillRunning, timeout)
	}
}

// TestInspectProcessSubstitution runs `ferry inspect <(cat b.tar)` and
// `ferry verify <(cat b.tar.zst)` in bash: a bundle through a pipe is read.
func TestInspectProcessSubstitution(t *testing.T) {
	bash := testenv.RequireBinary(t, "bash")
	images := map[string]testbundle.Image{"example.com/app:1": testimages.Image(t, "linux/amd64")}
	for _, c := range []struct{ command, file, want string }{
		{"inspect", "b.tar", "example.com/app:1"},
		{"verify", "b.tar.zst", "0 problem(s)"},
	} {
		path := testbundle.Write(t, filepath.Join(t.TempDir(), c.file), images)
		out, err := exec.Command(bash, "-c", `exec "$0" "$1" <(cat "$2")`, ferryCommand(t).Path, c.command, path).CombinedOutput()
		if err != nil || !strings.Contains(string(out), c.want) {
			t.Errorf("ferry %s <(cat %s): %v\n%s", c.command, c.file, err, out)
		}
	}
}

// TestKilledWhileCopyingLeavesNothing kill -9s ferry inspect while it
// copies a .tar.zst from a FIFO, and ferry serve while it serves one:
// the temporary directory is empty while they run and after, and a new
// serve removes the ready file the killed one left.
func TestKilledWhileCopyingLeavesNothing(t *testing.T) {
	zst := testbundle.Write(t, filepath.Join(t.TempDir(), "b.tar.zst"), map[string]testbundle.Image{
		"example.com/app:1": testimages.Image(t, "linux/amd64", testimages.WithRandomLayers(1, 8<<20)),
	})
	body, err := os.ReadFile(zst)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	env := append(os.Environ(), "TMPDIR="+tmp)

	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	inspect := ferryCommand(t, "inspect", "--tmp-dir", tmp, fifo)
	if err := inspect.Start(); err != nil {
		t.Fatal(err)
	}
	w := openWriter(t, fifo)
	defer w.Close()
	if _, err := w.Write(body[:len(body)/2]); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, tmp, "while inspect copies")
	inspect.Process.Kill()
	inspect.Wait()
	assertEmpty(t, tmp, "after kill -9 of inspect")

	ready := filepath.Join(t.TempDir(), "ready")
	serve := ferryCommand(t, "serve", "--plain-http", "--listen", "127.0.0.1:0", "--ready-file", ready, zst)
	serve.Env = env
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			serve.Process.Kill()
			t.Fatal("ferry serve wrote no ready file")
		}
	}
	assertEmpty(t, tmp, "while serve serves")
	serve.Process.Kill()
	serve.Wait()
	assertEmpty(t, tmp, "after kill -9 of serve")

	again := ferryCommand(t, "serve", "--plain-http", "--listen", "127.0.0.1:0", "--ready-file", ready, fifo)
	if err := again.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { again.Process.Kill(); again.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(ready); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a new serve left the killed one's ready file while it started")
		}
	}
}

func assertEmpty(t *testing.T, dir, when string) {
	t.Helper()
	if names := dirNames(t, dir); len(names) > 0 {
		t.Errorf("%s: %s holds %v", when, dir, names)
	}
}

// TestKilledBuildLeavesOnlyTheBundle kill -9s ferry build while a layer
// is being read (nothing of it yet, and half of it) and at several times
// into a build of a .tar and a .tar.zst: the output directory holds
// nothing but a finished bundle, and a re-run leaves only the bundle.
func TestKilledBuildLeavesOnlyTheBundle(t *testing.T) {
	img := testimages.Image(t, "linux/amd64", testimages.WithRandomLayers(1, 16<<20))
	src := filepath.Join(t.TempDir(), "layout")
	lp, err := layout.Write(src, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{ocispec.AnnotationRefName: "1"})); err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	layerPath := filepath.Join(src, "blobs", "sha256", testbundle.LayerDigest(t, layers[len(layers)-1]).Encoded())
	layer, err := os.ReadFile(layerPath)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	build := func(name string) *exec.Cmd {
		cmd := ferryCommand(t, "build", "--image", "oci:"+src+":1", "--name", "example.com/app:1", "-b", filepath.Join(out, name))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	kill := func(cmd *exec.Cmd, when string) {
		cmd.Process.Kill()
		cmd.Wait()
		for _, name := range dirNames(t, out) {
			if !strings.HasPrefix(name, "b.tar") {
				t.Errorf("kill -9 %s: the output directory holds %s", when, name)
			}
			os.Remove(filepath.Join(out, name)) // a bundle the build finished
		}
	}

	if err := os.Remove(layerPath); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(layerPath, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"b.tar", "b.tar.zst"} {
		for _, n := range []int{0, len(layer) / 2} {
			cmd := build(name)
			w := openWriter(t, layerPath)
			if _, err := w.Write(layer[:n]); err != nil {
				t.Fatal(err)
			}
			kill(cmd, fmt.Sprintf("of a build of %s after %d of the layer's %d bytes", name, n, len(layer)))
			w.Close()
		}
	}

	if err := os.Remove(layerPath); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(layerPath, layer, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"b.tar", "b.tar.zst"} {
		for _, after := range []time.Duration{0, 50 * time.Millisecond, 150 * time.Millisecond, 300 * time.Millisecond, 600 * time.Millisecond, time.Second} {
			cmd := build(name)
			time.Sleep(after)
			kill(cmd, fmt.Sprintf("of a build of %s after %s", name, after))
		}
	}

	// Where the file system lacks O_TMPFILE, a killed build leaves a
	// named temp file (as ferry before O_TMPFILE did); the next build
	// removes it, but not one that a running build holds.
	stale := filepath.Join(out, ".b.tar.tmp-123456")
	held := filepath.Join(out, ".b.tar.tmp-654321")
	for _, p := range []string{stale, held} {
		if err := os.WriteFile(p, layer, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(held)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(build("b.tar"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, out); !slices.Equal(names, []string{".b.tar.tmp-654321", "b.tar"}) {
		t.Errorf("after killed builds and a re-run, the output directory holds %v, want b.tar and the held temp file", names)
	}
}

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// TestKilledImportLease kill -9s ferry import while it writes into a real
// containerd: the lease it leaves expires within hours, not containerd's
// default day, and the next import removes it.
func TestKilledImportLease(t *testing.T) {
	ctd := testenv.Containerd(t)
	path := testbundle.Write(t, filepath.Join(t.TempDir(), "b.tar"), map[string]testbundle.Image{
		"example.com/app:1": testimages.Image(t, runtime.GOOS+"/"+runtime.GOARCH, testimages.WithRandomLayers(4, 16<<20)),
	})
	client, err := ctdclient.New(ctd.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := namespaces.WithNamespace(t.Context(), "killed")
	ferryLeases := func() []leases.Lease {
		all, err := client.LeasesService().List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return slices.DeleteFunc(all, func(l leases.Lease) bool { return !strings.HasPrefix(l.ID, "ferry-import-") })
	}

	cmd := ferryCommand(t, "import", path, "--address", ctd.Address, "--namespace", "killed")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for len(ferryLeases()) == 0 {
		if time.Since(start) > 30*time.Second {
			cmd.Process.Kill()
			t.Fatal("no ferry lease appeared in 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	left := ferryLeases()
	if len(left) != 1 {
		t.Fatalf("after kill -9, ferry leases %v; want the killed import's", left)
	}
	expire, err := time.Parse(time.RFC3339, left[0].Labels["containerd.io/gc.expire"])
	if err != nil || time.Until(expire) > 2*time.Hour {
		t.Errorf("the killed import's lease expires at %v (%v), want within 2 hours", expire, err)
	}

	if out, err := ferryCommand(t, "import", path, "--address", ctd.Address, "--namespace", "killed").CombinedOutput(); err != nil {
		t.Fatalf("import again: %v\n%s", err, out)
	}
	if left := ferryLeases(); len(left) != 0 {
		t.Errorf("after a re-run, ferry leases %v are left", left)
	}
}
