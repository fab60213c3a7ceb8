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
// line per layer. It is a transfer.Observer.
type progress struct {
	log   *logrus.Logger
	bars  *mpb.Progress
	total *mpb.Bar

	mu       sync.Mutex
	blobBars map[string]*mpb.Bar
}

// newProgress starts a progress display for a copy named verb ("pushing",
// "importing", ...). Bars are drawn only when errOut is a terminal and the
// log level shows info.
func newProgress(g *globalOptions, errOut io.Writer, verb string) *progress {
	p := &progress{log: g.log, blobBars: map[string]*mpb.Bar{}}
	if f, ok := errOut.(*os.File); ok && term.IsTerminal(int(f.Fd())) && g.log.IsLevelEnabled(logrus.InfoLevel) {
		p.bars = mpb.New(mpb.WithOutput(errOut), mpb.WithWidth(40))
		p.total = p.bars.AddBar(0,
			mpb.PrependDecorators(decor.Name(verb+" total", decor.WC{W: 22, C: decor.DindentRight})),
			mpb.AppendDecorators(decor.Counters(decor.SizeB1024(0), "% .1f / % .1f"), decor.Name(" "), decor.AverageSpeed(decor.SizeB1024(0), "% .1f")),
		)
	}
	return p
}

// Started implements transfer.Observer.
func (p *progress) Started(desc ocispec.Descriptor) {
	if p.bars == nil || manifests.IsSmall(desc.MediaType) {
		return
	}
	p.total.SetTotal(p.total.Current()+desc.Size+1, false)
	bar := p.bars.AddBar(desc.Size,
		mpb.BarRemoveOnComplete(),
		mpb.PrependDecorators(decor.Name(shortDigest(desc), decor.WC{W: 22, C: decor.DindentRight})),
		mpb.AppendDecorators(decor.Counters(decor.SizeB1024(0), "% .1f / % .1f")),
	)
	p.mu.Lock()
	p.blobBars[desc.Digest.String()] = bar
	p.mu.Unlock()
}

// Transferred implements transfer.Observer.
func (p *progress) Transferred(desc ocispec.Descriptor, n int64) {
	if p.bars == nil {
		return
	}
	p.total.IncrInt64(n)
	p.mu.Lock()
	bar := p.blobBars[desc.Digest.String()]
	p.mu.Unlock()
	if bar != nil {
		bar.IncrInt64(n)
	}
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
	bar := p.blobBars[desc.Digest.String()]
	delete(p.blobBars, desc.Digest.String())
	p.mu.Unlock()
	if bar != nil {
		bar.SetTotal(-1, true)
	}
}

// Wait finishes the display; call it before printing a summary.
func (p *progress) Wait() {
	if p.bars == nil {
		return
	}
	p.total.SetTotal(-1, true)
	p.bars.Wait()
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
