package transfer

import (
	"context"
	"fmt"

	"golang.org/x/sync/semaphore"

	"github.com/ferry-oci/ferry/manifests"
)

// DefaultJobs is the default number of blobs in flight: enough to hide
// latency on 2 cores without thrashing a 16-core machine's disk.
const DefaultJobs = 8

// CheckJobs applies ferry's one --jobs rule at the entry of every library
// call that takes it: 0 means the default, 1 means one at a time
// (everywhere: resolving, copying, hashing), and a negative value is a usage
// error wrapping manifests.ErrInvalidArgument.
func CheckJobs(n int) error {
	if n < 0 {
		return fmt.Errorf("%w: jobs must be 0 (the default) or more, not %d", manifests.ErrInvalidArgument, n)
	}
	return nil
}

// Jobs is n, or DefaultJobs when n is 0 (or less: CheckJobs refuses that
// at the entry of the call).
func Jobs(n int) int {
	if n <= 0 {
		return DefaultJobs
	}
	return n
}

// Limit bounds the operations in flight (blobs moving, registry
// requests): ferry's one semaphore, golang.org/x/sync's.
type Limit struct{ sem *semaphore.Weighted }

// NewLimit returns a Limit of Jobs(n) slots.
func NewLimit(n int) Limit {
	return Limit{sem: semaphore.NewWeighted(int64(Jobs(n)))}
}

// Acquire takes a slot, waiting for one until ctx ends; release gives it back.
func (l Limit) Acquire(ctx context.Context) (release func(), err error) {
	if err := l.sem.Acquire(ctx, 1); err != nil {
		return nil, err
	}
	return func() { l.sem.Release(1) }, nil
}
