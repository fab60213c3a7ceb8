// Package registry serves a bundle as an OCI registry: distribution/v3's
// handlers over a storage driver of ferry's that presents the bundle,
// read in place through bundle.Reader, as distribution's storage layout,
// layered under a filesystem driver that keeps pushes. It adds the OCI
// referrers API (which distribution v3 lacks), TLS (given or self-signed),
// htpasswd authentication, containerd's ?ns= mirror parameter and one
// access line per request.
package registry

import "errors"

// Sentinel errors of the registry package, wrapped with the file or option
// concerned; test them with errors.Is.
var (
	// ErrInvalidOptions means an option cannot be used: a missing or
	// malformed htpasswd, certificate or key file, or an invalid prefix.
	ErrInvalidOptions = errors.New("invalid registry options")
)

// Logger receives the server's log lines: one access line per request at
// info, problems at warn and error. *logrus.Logger satisfies it.
type Logger interface {
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
	Errorf(format string, args ...any)
}

// discard is the Logger used when Options.Log is nil.
type discard struct{}

func (discard) Infof(string, ...any)  {}
func (discard) Warnf(string, ...any)  {}
func (discard) Errorf(string, ...any) {}
