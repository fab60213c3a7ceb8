package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// RetryPolicy says how a request that failed on the way (HTTP 408, 429,
// 5xx, a connection reset or a timeout) is retried: after a backoff that
// doubles from 250ms up to 15s, with jitter, or after the Retry-After the
// registry asked for if that is longer. The zero value is the default.
// A wait ends with the request's context: its deadline is the overall one.
type RetryPolicy struct {
	// Attempts bounds the tries of one request, the first included; 0
	// means 6.
	Attempts int
	// Budget bounds the time one request takes, its retries and waits
	// included: no retry starts that would end its wait later; 0 means 1
	// minute.
	Budget time.Duration
}

const (
	defaultAttempts = 6
	defaultBudget   = time.Minute
	firstBackoff    = 250 * time.Millisecond
	maxBackoff      = 15 * time.Second
)

// uploadBackoff is how often go-containerregistry restarts a whole blob
// upload (from a new POST, re-reading the blob from the source) when its
// PATCH failed on the way: a PATCH's streamed body cannot be replayed, and
// the registry may have kept part of it, so only a new upload is safe.
var uploadBackoff = remote.Backoff{Duration: firstBackoff, Factor: 2, Jitter: 0.5, Steps: 5}

// retrier is the HTTP transport under go-containerregistry's auth: it
// retries each request as its RetryPolicy says, except a PATCH (see
// uploadBackoff) and a request whose body it cannot read again; and it
// answers an unauthenticated GET /v2/ (go-containerregistry pings once
// per repository) from the registry's first answer.
type retrier struct {
	inner  http.RoundTripper
	policy RetryPolicy
	// retried counts the retries made and the uploads restarted, for reports.
	retried atomic.Int64

	mu    sync.Mutex
	pings map[string]*http.Response // by scheme://host; Body unset
}

func newRetrier(inner http.RoundTripper, policy RetryPolicy) *retrier {
	if policy.Attempts <= 0 {
		policy.Attempts = defaultAttempts
	}
	if policy.Budget <= 0 {
		policy.Budget = defaultBudget
	}
	return &retrier{inner: inner, policy: policy, pings: map[string]*http.Response{}}
}

// RoundTrip implements http.RoundTripper.
func (rt *retrier) RoundTrip(req *http.Request) (*http.Response, error) {
	if resp := rt.cachedPing(req); resp != nil {
		return resp, nil
	}
	start := time.Now()
	for attempt := 1; ; attempt++ {
		resp, err := rt.inner.RoundTrip(req)
		wait, ok := rt.retryAfter(req, resp, err, attempt, start)
		if !ok {
			if err != nil && attempt > 1 {
				err = fmt.Errorf("%w (%d attempts)", err, attempt)
			}
			rt.keepPing(req, resp)
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if err := sleep(req.Context(), wait); err != nil {
			return nil, err
		}
		if req, err = rewind(req); err != nil {
			return nil, err
		}
		rt.retried.Add(1)
	}
}

// retryAfter says whether to retry after this attempt, and after how long.
func (rt *retrier) retryAfter(req *http.Request, resp *http.Response, err error, attempt int, start time.Time) (time.Duration, bool) {
	if attempt >= rt.policy.Attempts || !replayable(req) || req.Context().Err() != nil {
		return 0, false
	}
	switch {
	case err != nil && !transientError(err):
		return 0, false
	case err == nil && !transientStatus(resp.StatusCode):
		return 0, false
	}
	wait := backoff(attempt)
	if resp != nil {
		wait = max(wait, parseRetryAfter(resp.Header.Get("Retry-After")))
	}
	if time.Now().Add(wait).After(start.Add(rt.policy.Budget)) {
		return 0, false
	}
	return wait, true
}

// replayable reports whether the request may be sent again: not a PATCH,
// and without a body or with one it can read again.
func replayable(req *http.Request) bool {
	return req.Method != http.MethodPatch && (req.Body == nil || req.Body == http.NoBody || req.GetBody != nil)
}

// rewind returns req ready to be sent again, with a fresh body.
func rewind(req *http.Request) (*http.Request, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, err
	}
	req = req.Clone(req.Context())
	req.Body = body
	return req, nil
}

// transientStatus reports whether a registry may answer otherwise later:
// 408, 429 and 5xx but 501 and 505.
func transientStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests:
		return true
	case http.StatusNotImplemented, http.StatusHTTPVersionNotSupported:
		return false
	}
	return code >= 500 && code <= 599
}

// transientError reports whether a request failed on the way: the
// connection was reset or closed early (under a request still being
// written, too), or timed out. A refused
// connection, a DNS failure, TLS trouble or a cancelled context are not.
func transientError(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var nerr net.Error
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		(errors.As(err, &nerr) && nerr.Timeout())
}

// backoff is the wait before retry n (from 1): doubling from
// firstBackoff, at most maxBackoff, between half and all of it at random.
func backoff(n int) time.Duration {
	d := min(firstBackoff<<min(n-1, 16), maxBackoff)
	return d/2 + rand.N(d/2+1)
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// pingKey returns the cache key of an unauthenticated GET /v2/, or "".
func pingKey(req *http.Request) string {
	if req.Method != http.MethodGet || req.URL.Path != "/v2/" || req.Header.Get("Authorization") != "" {
		return ""
	}
	return req.URL.Scheme + "://" + req.URL.Host
}

// cachedPing answers a ping the registry has answered before.
func (rt *retrier) cachedPing(req *http.Request) *http.Response {
	key := pingKey(req)
	if key == "" {
		return nil
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	first := rt.pings[key]
	if first == nil {
		return nil
	}
	resp := *first
	resp.Header = first.Header.Clone()
	resp.Body, resp.Request = http.NoBody, req
	return &resp
}

// keepPing keeps a ping's answer when it says how to authenticate (200
// or 401), not when it is an error that may pass.
func (rt *retrier) keepPing(req *http.Request, resp *http.Response) {
	key := pingKey(req)
	if key == "" || resp == nil || (resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized) {
		return
	}
	kept := *resp
	kept.Header = resp.Header.Clone()
	kept.Body, kept.Request, kept.TLS = nil, nil, nil
	rt.mu.Lock()
	rt.pings[key] = &kept
	rt.mu.Unlock()
}

// restartUpload tells go-containerregistry when to restart a whole blob
// upload, and counts the restarts: when its PATCH failed on the way (the
// retrier does not replay it), or when the registry lost the upload (a PUT
// whose answer was lost is retried and finds no upload; the new upload's
// HEAD then finds the blob). Other requests were retried already.
func (rt *retrier) restartUpload(err error) bool {
	var (
		terr    *transport.Error
		uerr    *url.Error
		restart bool
	)
	switch {
	case errors.As(err, &terr):
		lost := terr.StatusCode == http.StatusNotFound && len(terr.Errors) > 0 && hasCode(terr, transport.BlobUploadUnknownErrorCode)
		patch := terr.Request != nil && terr.Request.Method == http.MethodPatch && transientStatus(terr.StatusCode)
		restart = lost || patch
	case errors.As(err, &uerr):
		restart = uerr.Op == "Patch" && transientError(uerr.Err)
	}
	if restart {
		rt.retried.Add(1)
	}
	return restart
}
