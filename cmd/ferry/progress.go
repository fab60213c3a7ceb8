package main

import (
	"fmt"
	"io"
	"os"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/ferry-oci/ferry/internal/transfer"
	"github.com/ferry-oci/ferry/manifests"
)

// progress shows a copy as it goes: on a terminal, a bar per blob in
// flight and a total bar (mpb, as skopeo and podman do); otherwise one log
// line per layer. It is a transfer.Observer. While the bars are drawn, log
// lines are printed above them.
type progress struct {
	log    *logrus.Logger
	errOut io.Writer
	bars   *mpb.Progress
	total  *mpb.Bar

	mu       sync.Mutex
	expected int64 // bytes of the blobs started, less what Done found unsent
	blobs    map[string]*blobBar
	finished bool
}

// blobBar is the bar of one blob in flight. A blob copied to several
// places at once shares one bar: users counts the copies, size their bytes
// and sent the bytes they have moved.
type blobBar struct {
	bar        *mpb.Bar
	users      int
	size, sent int64
}

// newProgress starts a progress display for a copy named verb ("pushing",
// "importing", ...). Bars are drawn only when errOut is a terminal and the
// log level shows info.
func newProgress(g *globalOptions, errOut io.Writer, verb string) *progress {
	p := &progress{log: g.log, errOut: errOut, blobs: map[string]*blobBar{}}
	if f, ok := errOut.(*os.File); ok && term.IsTerminal(int(f.Fd())) && g.log.IsLevelEnabled(logrus.InfoLevel) {
		p.bars = mpb.New(mpb.WithOutput(errOut), mpb.WithWidth(40))
		p.total = p.bars.AddBar(0,
			mpb.PrependDecorators(decor.Name(verb+" total", decor.WC{W: 22, C: decor.DindentRight})),
			mpb.AppendDecorators(decor.Counters(decor.SizeB1024(0), "% .1f / % .1f"), decor.Name(" "), decor.AverageSpeed(decor.SizeB1024(0), "% .1f")),
		)
		p.log.SetOutput(p.bars)
	}
	return p
}

// Started implements transfer.Observer.
func (p *progress) Started(desc ocispec.Descriptor) {
	if p.bars == nil || manifests.IsSmall(desc.MediaType) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.expected += desc.Size
	// One byte more than expected keeps the total bar from completing
	// until Wait: more blobs may start.
	p.total.SetTotal(p.expected+1, false)
	if b := p.blobs[desc.Digest.String()]; b != nil {
		b.users++
		b.size += desc.Size
		return
	}
	bar := p.bars.AddBar(desc.Size,
		mpb.BarRemoveOnComplete(),
		mpb.PrependDecorators(decor.Name(shortDigest(desc), decor.WC{W: 22, C: decor.DindentRight})),
		mpb.AppendDecorators(decor.Counters(decor.SizeB1024(0), "% .1f / % .1f")),
	)
	p.blobs[desc.Digest.String()] = &blobBar{bar: bar, users: 1, size: desc.Size}
}

// Transferred implements transfer.Observer.
func (p *progress) Transferred(desc ocispec.Descriptor, n int64) {
	if p.bars == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.blobs[desc.Digest.String()]
	if b == nil {
		return
	}
	b.sent += n
	b.bar.IncrInt64(n)
	p.total.IncrInt64(n)
}

// Done implements transfer.Observer.
func (p *progress) Done(desc ocispec.Descriptor, status transfer.Status) {
	if p.bars == nil {
		if !manifests.IsSmall(desc.MediaType) {
			p.log.Infof("%s %s (%s)", status, shortDigest(desc), humanBytes(desc.Size))
		}
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.blobs[desc.Digest.String()]
	if b == nil {
		return
	}
	if b.users--; b.users > 0 {
		return
	}
	delete(p.blobs, desc.Digest.String())
	// A mounted blob moves no bytes: take what was not sent off the total,
	// so the total bar reads what is really left.
	p.expected -= b.size - b.sent
	p.total.SetTotal(p.expected+1, false)
	b.bar.SetTotal(-1, true)
}

// Wait ends the display; call it before printing a summary. Bars of blobs
// that never finished (the copy failed or was interrupted) are aborted, so
// Wait never blocks on them. Log lines go straight to the terminal again.
func (p *progress) Wait() {
	if p.bars == nil {
		return
	}
	p.mu.Lock()
	if p.finished {
		p.mu.Unlock()
		return
	}
	p.finished = true
	for _, b := range p.blobs {
		b.bar.Abort(true)
	}
	aborted := len(p.blobs) > 0
	p.blobs = nil
	p.mu.Unlock()
	if aborted {
		p.total.Abort(false)
	} else {
		p.total.SetTotal(-1, true)
	}
	p.bars.Wait()
	p.log.SetOutput(p.errOut)
}

func shortDigest(desc ocispec.Descriptor) string {
	enc := desc.Digest.Encoded()
	if len(enc) > 12 {
		enc = enc[:12]
	}
	return "blob " + enc
}

// humanBytes prints a byte count in binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
