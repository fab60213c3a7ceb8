package main

import (
	"io"
	"regexp"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"

	"github.com/ferry-oci/ferry/internal/transfer"
)

// terminalProgress returns a progress drawing on a pseudo-terminal and
// what the terminal shows.
func terminalProgress(t *testing.T) (*progress, *syncBuffer) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := pty.Setsize(tty, &pty.Winsize{Rows: 40, Cols: 160}); err != nil {
		t.Fatal(err)
	}
	var screen syncBuffer
	done := make(chan struct{})
	go func() {
		io.Copy(&screen, ptmx) //nolint:errcheck // ends when the pty closes
		close(done)
	}()
	t.Cleanup(func() {
		tty.Close()
		ptmx.Close()
		<-done
	})
	g := &globalOptions{log: logrus.New()}
	return newProgress(g, tty, "testing"), &screen
}

func layer(name string, size int64) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString(name), Size: size}
}

// TestProgressTotal: the total bar counts every blob in flight, so it
// never reads 100% while blobs still move, and a mounted blob's unsent
// bytes leave the total.
func TestProgressTotal(t *testing.T) {
	p, screen := terminalProgress(t)
	a, b, c := layer("a", 1000), layer("b", 1000), layer("c", 500)
	p.Started(a)
	p.Started(b)
	p.Transferred(a, 1000)
	p.Transferred(b, 600)
	p.Done(a, transfer.Copied)
	waitScreen(t, screen, "testing total", "1.6 KiB / 2.0 KiB")
	p.Started(c)
	p.Done(c, transfer.Mounted)
	p.Transferred(b, 400)
	p.Done(b, transfer.Copied)
	p.Wait()
	waitScreen(t, screen, "testing total", "2.0 KiB / 2.0 KiB")
}

// TestProgressWaitAfterFailure: Wait returns at once when blobs started
// and never finished (the copy failed or was interrupted).
func TestProgressWaitAfterFailure(t *testing.T) {
	p, _ := terminalProgress(t)
	p.Started(layer("a", 1000))
	p.Transferred(layer("a", 1000), 10)
	p.Started(layer("b", 0))
	done := make(chan struct{})
	go func() {
		p.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Wait blocks on the unfinished blobs")
	}
	p.Started(layer("c", 10)) // a straggler after Wait draws nothing
}

var totalLine = regexp.MustCompile(`testing total\s+(?:\S+\s+)?(\d[\d.]* \S+ / \d[\d.]* \S+)`)

// lastTotal returns the counters of the last total bar drawn.
func lastTotal(screen string) string {
	m := totalLine.FindAllStringSubmatch(screen, -1)
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1][1]
}

// waitScreen waits until the last drawn line naming bar shows want.
func waitScreen(t *testing.T, screen *syncBuffer, bar, want string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if got := lastTotal(screen.String()); got == want {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("%s shows %q, want %q; screen:\n%s", bar, got, want, screen)
		}
	}
}
