package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"

	"github.com/distribution/distribution/v3"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/base"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
)

// driverName is the name ferry's storage driver registers with
// distribution's driver factory.
const driverName = "ferry"

// driverParam is the storage parameter naming the driver New prepared.
const driverParam = "instance"

func init() {
	factory.Register(driverName, driverFactory{})
}

// prepared holds the drivers New made, by instance key, until
// distribution's factory takes them: Create removes its entry, and New
// removes it when NewApp fails, so nothing outlives the server.
var prepared sync.Map

// driverFactory hands distribution the driver New prepared.
type driverFactory struct{}

// Create implements factory.StorageDriverFactory.
func (driverFactory) Create(_ context.Context, params map[string]any) (storagedriver.StorageDriver, error) {
	key, _ := params[driverParam].(string)
	d, ok := prepared.LoadAndDelete(key)
	if !ok {
		return nil, fmt.Errorf("%s storage driver: no driver prepared as %q", driverName, key)
	}
	return d.(storagedriver.StorageDriver), nil
}

// layeredDriver is ferry's storage driver: the bundle (read-only) under a
// writable driver (a filesystem driver, or none when read-only). Reads look
// in the writable layer first, then in the bundle; writes go to the
// writable layer. Paths are checked by distribution's base driver.
type layeredDriver struct {
	base.Base
	lower *bundleTree
}

// newLayeredDriver layers upper (nil: read-only) over the bundle.
func newLayeredDriver(lower *bundleTree, upper storagedriver.StorageDriver) *layeredDriver {
	return &layeredDriver{Base: base.Base{StorageDriver: &overlay{lower: lower, upper: upper}}, lower: lower}
}

// Delete refuses to delete what the bundle holds, with the error
// distribution answers 405 UNSUPPORTED to (base would hide it).
func (d *layeredDriver) Delete(ctx context.Context, path string) error {
	if d.lower.has(path) {
		return distribution.ErrUnsupported
	}
	return d.Base.Delete(ctx, path)
}

// overlay is the unchecked driver under layeredDriver.
type overlay struct {
	lower *bundleTree
	upper storagedriver.StorageDriver
}

func notFound(err error) bool {
	var nf storagedriver.PathNotFoundError
	return errors.As(err, &nf)
}

// readOnly is the error of writes when there is no writable layer.
func readOnly() error {
	return storagedriver.ErrUnsupportedMethod{DriverName: driverName}
}

// Name implements storagedriver.StorageDriver.
func (o *overlay) Name() string { return driverName }

// GetContent implements storagedriver.StorageDriver.
func (o *overlay) GetContent(ctx context.Context, path string) ([]byte, error) {
	if o.upper != nil {
		b, err := o.upper.GetContent(ctx, path)
		if !notFound(err) {
			return b, err
		}
	}
	return o.lower.GetContent(ctx, path)
}

// Reader implements storagedriver.StorageDriver.
func (o *overlay) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	if o.upper != nil {
		rc, err := o.upper.Reader(ctx, path, offset)
		if !notFound(err) {
			return rc, err
		}
	}
	return o.lower.Reader(ctx, path, offset)
}

// Stat implements storagedriver.StorageDriver.
func (o *overlay) Stat(ctx context.Context, path string) (storagedriver.FileInfo, error) {
	if o.upper != nil {
		fi, err := o.upper.Stat(ctx, path)
		if !notFound(err) {
			return fi, err
		}
	}
	return o.lower.Stat(ctx, path)
}

// List implements storagedriver.StorageDriver: the entries of both layers.
func (o *overlay) List(ctx context.Context, path string) ([]string, error) {
	entries, err := o.lower.List(ctx, path)
	if err != nil && !notFound(err) {
		return nil, err
	}
	if o.upper == nil {
		return entries, err
	}
	up, uerr := o.upper.List(ctx, path)
	switch {
	case uerr != nil && !notFound(uerr):
		return nil, uerr
	case uerr != nil:
		return entries, err
	case err != nil:
		return up, nil
	}
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		seen[e] = true
	}
	for _, e := range up {
		if !seen[e] {
			entries = append(entries, e)
		}
	}
	sort.Strings(entries)
	return entries, nil
}

// PutContent implements storagedriver.StorageDriver.
func (o *overlay) PutContent(ctx context.Context, path string, content []byte) error {
	if o.upper == nil {
		return readOnly()
	}
	return o.upper.PutContent(ctx, path, content)
}

// Writer implements storagedriver.StorageDriver.
func (o *overlay) Writer(ctx context.Context, path string, append bool) (storagedriver.FileWriter, error) {
	if o.upper == nil {
		return nil, readOnly()
	}
	return o.upper.Writer(ctx, path, append)
}

// Move implements storagedriver.StorageDriver, within the writable layer.
func (o *overlay) Move(ctx context.Context, sourcePath, destPath string) error {
	if o.upper == nil {
		return readOnly()
	}
	return o.upper.Move(ctx, sourcePath, destPath)
}

// Delete implements storagedriver.StorageDriver, within the writable layer.
func (o *overlay) Delete(ctx context.Context, path string) error {
	if o.upper == nil {
		return readOnly()
	}
	return o.upper.Delete(ctx, path)
}

// RedirectURL implements storagedriver.StorageDriver: never a redirect.
func (o *overlay) RedirectURL(*http.Request, string) (string, error) { return "", nil }

// Walk implements storagedriver.StorageDriver through List and Stat.
func (o *overlay) Walk(ctx context.Context, path string, f storagedriver.WalkFn, options ...func(*storagedriver.WalkOptions)) error {
	return storagedriver.WalkFallback(ctx, o, path, f, options...)
}
