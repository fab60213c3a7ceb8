package installer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/ferry-oci/ferry/bundle"
	"github.com/ferry-oci/ferry/bundle/signature"
	"github.com/ferry-oci/ferry/installer/containerd"
	"github.com/ferry-oci/ferry/registry"
)

// InstallOptions say which steps Install runs. Each step takes the options
// of the library call that runs it alone (ferry serve, import, push).
type InstallOptions struct {
	// VerifyFull hashes every blob before anything else; without it the
	// bundle's sizes and index graph are checked (fast).
	VerifyFull bool
	// VerifyKey, when set, makes the verify step also check that every
	// image carries a cosign signature by this key (see
	// signature.VerifyBundle); a failure stops everything.
	VerifyKey *signature.Key
	// Listener, when set, serves the bundle (as ferry serve) while the
	// other steps run and afterwards. Install closes it.
	Listener net.Listener
	// Serve configures the embedded registry.
	Serve registry.Options
	// Ready, when set, is called with the registry URL once the steps are
	// done and the registry serves on (never with NoServe), so a script
	// waiting for it knows the node is installed.
	Ready func(url string) error
	// Mirror, when it has hosts, writes containerd hosts.toml files sending
	// those registries' pulls to the embedded registry; Server is filled in.
	Mirror MirrorOptions
	// Import, when set, loads the node's images into containerd.
	Import *containerd.ImportOptions
	// Push, when set, seeds a long-lived registry.
	Push *PushOptions
	// ServeFor keeps serving this long after the steps; 0 means until ctx
	// ends, unless NoServe.
	ServeFor time.Duration
	// NoServe stops serving as soon as the steps are done.
	NoServe bool
	// StepDone, when set, is called as each step ends, so callers can
	// report progress while the registry keeps serving.
	StepDone func(StepResult)
}

// Step names, in the order Install runs them.
const (
	StepVerify = "verify"
	StepServe  = "serve"
	StepMirror = "mirror-config"
	StepImport = "import"
	StepPush   = "push"
)

// StepResult is what one step of an install did.
type StepResult struct {
	Name string `json:"name"`
	// Duration is the step's wall time; Seconds is the same in seconds,
	// ferry's one form of durations in JSON.
	Duration time.Duration `json:"-"`
	Seconds  float64       `json:"seconds"`
	// Summary is a one-line account of the step.
	Summary string `json:"summary"`
	// Detail is the step's own result (*ImportResult, *PushResult, ...).
	Detail any    `json:"detail,omitempty"`
	Error  string `json:"error,omitempty"`

	err error
}

// InstallResult is what an install did, step by step.
type InstallResult struct {
	// URL is where the embedded registry served, if it did.
	URL   string       `json:"url,omitempty"`
	Steps []StepResult `json:"steps"`

	stepDone func(StepResult)
}

// Failed returns the steps that failed.
func (r *InstallResult) Failed() []StepResult {
	var out []StepResult
	for _, s := range r.Steps {
		if s.err != nil {
			out = append(out, s)
		}
	}
	return out
}

// Install runs the whole node or cluster flow on one bundle: verify it,
// serve it and point containerd's mirrors at it, import the node's images,
// push every image to a registry, then keep serving as long as asked. A
// failed verify stops everything; any other failed step is reported and the
// steps after it still run. The error then wraps ErrStepsFailed and names
// the failed steps.
func Install(ctx context.Context, r *bundle.Reader, opts InstallOptions) (*InstallResult, error) {
	res := &InstallResult{stepDone: opts.StepDone}
	if step := runStep(StepVerify, func() (string, any, error) { return verifyStep(ctx, r, opts.VerifyFull, opts.VerifyKey) }); res.add(step) != nil {
		if opts.Listener != nil {
			opts.Listener.Close()
		}
		return res, fmt.Errorf("install: %w", step.err)
	}
	var srv *served
	if opts.Listener != nil {
		step := runStep(StepServe, func() (string, any, error) {
			var err error
			srv, err = serve(ctx, r, opts)
			if err != nil {
				return "", nil, err
			}
			res.URL = srv.url
			return fmt.Sprintf("serving %d images on %s", srv.images, srv.url), nil, nil
		})
		if res.add(step) != nil {
			return res, fmt.Errorf("install: %w", step.err)
		}
	}
	if len(opts.Mirror.Mirrors) > 0 {
		res.add(runStep(StepMirror, func() (string, any, error) { return mirrorStep(opts.Mirror, res.URL) }))
	}
	if opts.Import != nil {
		res.add(runStep(StepImport, func() (string, any, error) {
			out, err := containerd.Import(ctx, r, *opts.Import)
			if out == nil {
				return "", nil, err
			}
			return fmt.Sprintf("%d images into %s (namespace %s): %d blobs written, %d skipped, %d referrers left out",
				len(out.Images), out.Where(), out.Namespace, out.BlobsWritten, out.BlobsSkipped, out.ReferrersLeftOut), out, err
		}))
	}
	if opts.Push != nil {
		res.add(runStep(StepPush, func() (string, any, error) {
			out, err := Push(ctx, r, *opts.Push)
			if out == nil {
				return "", nil, err
			}
			return fmt.Sprintf("%d images to %s (%d failed): %d blobs sent, %d skipped, %d mounted",
				len(out.Images), opts.Push.To, len(out.Failed()), out.Stats.Copied, out.Stats.Skipped, out.Stats.Mounted), out, err
		}))
	}
	if srv != nil {
		if !opts.NoServe {
			res.add(StepResult{Name: StepServe, Summary: "steps done; serving " + res.URL + serveUntil(opts.ServeFor)})
			if err := ready(opts.Ready, res.URL); err != nil {
				res.add(StepResult{Name: StepServe, Summary: "ready callback failed", Error: err.Error(), err: err})
			} else {
				srv.wait(ctx, opts.ServeFor)
			}
		}
		if err := srv.stop(); err != nil {
			res.add(StepResult{Name: StepServe, Summary: "the registry stopped with an error", Error: err.Error(), err: err})
		}
	}
	if failed := res.Failed(); len(failed) > 0 {
		names := make([]string, len(failed))
		errs := []error{ErrStepsFailed}
		for i, s := range failed {
			names[i] = s.Name
			errs = append(errs, s.err)
		}
		return res, fmt.Errorf("install: %s failed: %w", strings.Join(names, ", "), errors.Join(errs...))
	}
	return res, nil
}

func ready(f func(string) error, url string) error {
	if f == nil {
		return nil
	}
	return f(url)
}

func serveUntil(d time.Duration) string {
	if d > 0 {
		return " for " + d.String()
	}
	return " until interrupted"
}

func runStep(name string, run func() (string, any, error)) StepResult {
	start := time.Now()
	summary, detail, err := run()
	took := time.Since(start)
	s := StepResult{Name: name, Duration: took, Seconds: took.Seconds(), Summary: summary, Detail: detail, err: err}
	if err != nil {
		s.Error = err.Error()
	}
	return s
}

// add records a step and returns its error.
func (r *InstallResult) add(s StepResult) error {
	r.Steps = append(r.Steps, s)
	if r.stepDone != nil {
		r.stepDone(s)
	}
	return s.err
}

func verifyStep(ctx context.Context, r *bundle.Reader, full bool, key *signature.Key) (string, any, error) {
	rep, err := bundle.Verify(ctx, r, bundle.VerifyOptions{Full: full})
	if err != nil {
		return "", rep, err
	}
	mode := "sizes and index graph"
	if full {
		mode = "every blob hashed"
	}
	summary := fmt.Sprintf("%d images, %d blobs ok (%s)", rep.Images, len(r.Digests()), mode)
	if key == nil {
		return summary, rep, nil
	}
	sigs, err := signature.VerifyBundle(ctx, r, key, r.Images())
	if err != nil {
		return "", sigs, err
	}
	return summary + fmt.Sprintf("; %d images signed by the key", len(sigs.Images)), rep, nil
}

func mirrorStep(opts MirrorOptions, url string) (string, any, error) {
	if url == "" {
		return "", nil, fmt.Errorf("mirror config needs the embedded registry (--serve)")
	}
	opts.Server = url
	files, err := WriteMirrorConfig(opts)
	if err != nil {
		return "", nil, err
	}
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.Path
	}
	return fmt.Sprintf("%s -> %s in %s", strings.Join(opts.Mirrors, ", "), url, opts.Dir), paths, nil
}

// served is the embedded registry of an install, serving in the background.
type served struct {
	srv    *registry.Server
	url    string
	images int
	cancel context.CancelFunc
	done   chan struct{} // closed when Serve returns
	err    error         // what Serve returned
}

func serve(ctx context.Context, r *bundle.Reader, opts InstallOptions) (*served, error) {
	ln := opts.Listener
	srv, err := registry.New(ctx, r, opts.Serve)
	if err != nil {
		ln.Close()
		return nil, err
	}
	s := &served{srv: srv, url: srv.URL(ln.Addr()), images: srv.Images(), done: make(chan struct{})}
	serveCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	go func() {
		s.err = srv.Serve(serveCtx, ln)
		close(s.done)
	}()
	return s, nil
}

// wait serves until ctx ends or, when d > 0, for d at most.
func (s *served) wait(ctx context.Context, d time.Duration) {
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	select {
	case <-ctx.Done():
	case <-s.done:
	}
}

// stop shuts the registry down gracefully, waits for it and returns what
// Serve returned.
func (s *served) stop() error {
	s.cancel()
	<-s.done
	return errors.Join(s.err, s.srv.Close())
}
