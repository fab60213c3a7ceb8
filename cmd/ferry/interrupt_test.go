package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ferry-oci/ferry/internal/testbundle"
	"github.com/ferry-oci/ferry/internal/testenv"
	"github.com/ferry-oci/ferry/internal/testimages"
)

// stopWithin is how soon ferry must stop after SIGINT or SIGTERM.
const stopWithin = 2 * time.Second

// proxyRate slows the traffic the interrupt tests cut: 2 MiB/s, so the
// 16 MiB of bigImages take seconds to move.
const proxyRate = 2 << 20

// bigImages are two two-platform images with a 4 MiB random layer per
// platform, 16 MiB of layers in all.
func bigImages(t *testing.T) map[string]testbundle.Image {
	t.Helper()
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials of the machine
	platforms := []string{"linux/amd64", "linux/arm64"}
	return map[string]testbundle.Image{
		"docker.io/library/big:1": testimages.Index(t, platforms, testimages.WithRandomLayers(1, 4<<20)),
		"quay.io/ferry/big:2":     testimages.Index(t, platforms, testimages.WithRandomLayers(1, 4<<20)),
	}
}

// bigBundle writes bigImages to a bundle and returns its path and the
// images' digests.
func bigBundle(t *testing.T) (string, map[string]digest.Digest) {
	t.Helper()
	images := bigImages(t)
	path := testbundle.Write(t, filepath.Join(t.TempDir(), "big.tar"), images)
	digests := map[string]digest.Digest{}
	for name, img := range images {
		raw, err := img.RawManifest()
		if err != nil {
			t.Fatal(err)
		}
		digests[name] = digest.FromBytes(raw)
	}
	return path, digests
}

// interruptMidway waits until moved passes 256 KiB, then interrupts ferry
// with sig (^C typed on the terminal for SIGINT) and checks that it stops
// within stopWithin with the signal's exit code. It returns the terminal.
func interruptMidway(t *testing.T, run *ptyRun, moved func() int64, sig syscall.Signal) string {
	t.Helper()
	run.waitFor(t, "bytes moving", func() bool { return moved() > 256<<10 })
	if sig == syscall.SIGINT {
		run.ctrlC(t)
	} else if err := run.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	code, out := run.waitExit(t, stopWithin)
	if code != 128+int(sig) || !strings.Contains(out, "interrupt again to exit at once") {
		t.Errorf("exit %d, want %d; terminal:\n%s", code, 128+int(sig), out)
	}
	return out
}

// checkPushed checks with skopeo that reg holds every image of digests
// under prefix, with the bundle's digest.
func checkPushed(t *testing.T, reg *testenv.RegistryServer, prefix string, digests map[string]digest.Digest) {
	t.Helper()
	for name, want := range digests {
		repo := strings.TrimPrefix(strings.TrimPrefix(name, "docker.io/"), "quay.io/")
		raw := testenv.Skopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+reg.Ref(prefix+"/"+repo))
		if got := digest.FromBytes([]byte(raw)); got != want {
			t.Errorf("%s: registry holds %s, want %s", name, got, want)
		}
	}
}

// TestInterruptPush: ^C or SIGTERM in the middle of a push on a terminal
// stops it within 2 seconds, and the push can simply be run again.
func TestInterruptPush(t *testing.T) {
	path, digests := bigBundle(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			reg := testenv.Registry(t)
			slow := newSlowProxy(t, "tcp", reg.Host, proxyRate)
			run := startPTY(t, "push", path, "--to", slow.Addr+"/mirror", "--plain-http")
			interruptMidway(t, run, slow.Bytes.Load, sig)
			if code, stdout, stderr := runFerry(t, "", "push", path, "--to", reg.Host+"/mirror", "--plain-http"); code != exitOK {
				t.Fatalf("push again: exit %d\n%s\n%s", code, stdout, stderr)
			}
			checkPushed(t, reg, "mirror", digests)
		})
	}
}

// TestInterruptBuild: ^C in the middle of a build on a terminal stops it
// within 2 seconds and leaves no file, whole or partial, behind.
func TestInterruptBuild(t *testing.T) {
	reg := testenv.Registry(t)
	args := []string{"build"}
	slow := newSlowProxy(t, "tcp", reg.Host, proxyRate)
	for name, img := range bigImages(t) {
		repo := strings.TrimPrefix(strings.TrimPrefix(name, "docker.io/"), "quay.io/")
		testimages.Push(t, reg, repo, img)
		args = append(args, "--image", slow.Addr+"/"+repo)
	}
	outDir := t.TempDir()
	run := startPTY(t, append(args, "--plain-http", "-b", filepath.Join(outDir, "release.tar"))...)
	interruptMidway(t, run, slow.Bytes.Load, syscall.SIGINT)
	if left, _ := filepath.Glob(filepath.Join(outDir, "*")); len(left) > 0 {
		t.Errorf("an interrupted build left %v", left)
	}
}

// TestInterruptImport: ^C in the middle of an import on a terminal stops it
// within 2 seconds, leaves no lease in containerd, and the import can be
// run again.
func TestInterruptImport(t *testing.T) {
	path, digests := bigBundle(t)
	ctd := testenv.Containerd(t)
	slow := newSlowProxy(t, "unix", ctd.Address, proxyRate)
	run := startPTY(t, "import", path, "--address", slow.Addr, "--namespace", "intr", "--all-platforms", "--no-unpack")
	interruptMidway(t, run, slow.Bytes.Load, syscall.SIGINT)
	if leases := strings.TrimSpace(ctd.Ctr(t, "-n", "intr", "leases", "ls", "-q")); leases != "" {
		t.Errorf("an interrupted import left leases:\n%s", leases)
	}
	if code, stdout, stderr := runFerry(t, "", "import", path, "--address", ctd.Address, "--namespace", "intr", "--all-platforms", "--no-unpack"); code != exitOK {
		t.Fatalf("import again: exit %d\n%s\n%s", code, stdout, stderr)
	}
	listed := ctd.Ctr(t, "-n", "intr", "images", "ls")
	for name, d := range digests {
		if !strings.Contains(listed, d.String()) {
			t.Errorf("%s (%s) not imported:\n%s", name, d, listed)
		}
	}
}

// TestInterruptInstall: ^C while install pushes stops it, its registry
// and its ready file within 2 seconds.
func TestInterruptInstall(t *testing.T) {
	path, _ := bigBundle(t)
	reg := testenv.Registry(t)
	slow := newSlowProxy(t, "tcp", reg.Host, proxyRate)
	ready := filepath.Join(t.TempDir(), "ready")
	run := startPTY(t, "install", path, "--serve", "127.0.0.1:0", "--plain-http", "--ready-file", ready,
		"--push-to", slow.Addr+"/seed", "--push-plain-http")
	interruptMidway(t, run, slow.Bytes.Load, syscall.SIGINT)
	if _, err := os.Stat(ready); !os.IsNotExist(err) {
		t.Errorf("ready file left behind: %v", err)
	}
}

// stallBlob starts a download of the largest blob of the bundle served at
// url and stops reading it, so the request stays in flight.
func stallBlob(t *testing.T, url string, path string) {
	t.Helper()
	r := testbundle.Open(t, path)
	var largest string
	var size int64
	for _, d := range r.Digests() {
		if n, _ := r.Size(d); n > size {
			largest, size = d.String(), n
		}
	}
	host := strings.TrimPrefix(url, "http://")
	blobPath := ""
	for _, repo := range []string{"library/big", "ferry/big"} {
		p := "/v2/" + repo + "/blobs/" + largest
		if resp, err := http.Head(url + p); err == nil && resp.StatusCode == http.StatusOK {
			blobPath = p
		}
	}
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.(*net.TCPConn).SetReadBuffer(4096) //nolint:errcheck // best effort: a small window stalls the server sooner
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", blobPath, host)
	buf := make([]byte, 512)
	if _, err := c.Read(buf); err != nil || !strings.HasPrefix(string(buf), "HTTP/1.1 200") {
		t.Fatalf("blob download: %v %q", err, buf)
	}
}

// TestInterruptServe: ^C stops ferry serve within 2 seconds although a
// client stalls in the middle of a download; with a long
// --shutdown-timeout, the first ^C waits for the client and a second one
// exits at once.
func TestInterruptServe(t *testing.T) {
	// A layer larger than the server's socket send buffer (8 MiB as the
	// kernel counts it), so that a stalled download stays in flight.
	path := testbundle.Write(t, filepath.Join(t.TempDir(), "big.tar"), map[string]testbundle.Image{
		"docker.io/library/big:1": testimages.Image(t, "linux/amd64", testimages.WithRandomLayers(1, 24<<20)),
	})
	start := func(t *testing.T, args ...string) (*ptyRun, string) {
		ready := filepath.Join(t.TempDir(), "ready")
		run := startPTY(t, append([]string{"serve", path, "--listen", "127.0.0.1:0", "--plain-http", "--ready-file", ready}, args...)...)
		var url []byte
		run.waitFor(t, "ready file", func() bool {
			b, err := os.ReadFile(ready)
			url = b
			return err == nil
		})
		stallBlob(t, strings.TrimSpace(string(url)), path)
		return run, ready
	}
	t.Run("once", func(t *testing.T) {
		run, ready := start(t)
		run.ctrlC(t)
		code, out := run.waitExit(t, stopWithin)
		if code != 128+int(syscall.SIGINT) || !strings.Contains(out, "still in flight") {
			t.Errorf("exit %d; terminal:\n%s", code, out)
		}
		if _, err := os.Stat(ready); !os.IsNotExist(err) {
			t.Errorf("ready file left behind: %v", err)
		}
	})
	t.Run("twice", func(t *testing.T) {
		run, _ := start(t, "--shutdown-timeout", "1m")
		run.ctrlC(t)
		time.Sleep(500 * time.Millisecond)
		if run.exited() {
			t.Fatalf("ferry did not wait for the request in flight:\n%s", run.out.String())
		}
		run.ctrlC(t)
		code, out := run.waitExit(t, 500*time.Millisecond)
		if code != 128+int(syscall.SIGINT) || !strings.Contains(out, "exiting at once") {
			t.Errorf("exit %d; terminal:\n%s", code, out)
		}
	})
}
