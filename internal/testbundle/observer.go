package testbundle

import (
	"sync"
	"sync/atomic"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/internal/transfer"
)

// CancelAfter is a transfer.Observer that calls Cancel once Limit bytes
// have been sent.
type CancelAfter struct {
	Limit  int64
	Cancel func()
	n      atomic.Int64
	once   sync.Once
}

var _ transfer.Observer = (*CancelAfter)(nil)

// Sent is how many bytes have been sent so far.
func (c *CancelAfter) Sent() int64 { return c.n.Load() }

// Started implements transfer.Observer.
func (c *CancelAfter) Started(ocispec.Descriptor) {}

// Transferred implements transfer.Observer.
func (c *CancelAfter) Transferred(_ ocispec.Descriptor, n int64) {
	if c.n.Add(n) >= c.Limit {
		c.once.Do(c.Cancel)
	}
}

// Done implements transfer.Observer.
func (c *CancelAfter) Done(ocispec.Descriptor, transfer.Status) {}
