package manifests

import (
	"fmt"
	"io"
)

// ReadAtMost reads all of r, a small file or blob (a manifest, an index,
// an image list) that name names, and refuses it when it holds more than
// limit bytes: the error names it and wraps ErrTooLarge. It never reads
// more than limit+1 bytes.
func ReadAtMost(r io.Reader, limit int64, name string) ([]byte, error) {
	return readAtMost(r, limit, name, ErrTooLarge)
}

// ReadManifest is ReadAtMost for an index or manifest: at most
// MaxManifestSize bytes, and an error wrapping ErrManifestTooLarge (and
// ErrTooLarge) beyond.
func ReadManifest(r io.Reader, name string) ([]byte, error) {
	return readAtMost(r, MaxManifestSize, name, ErrManifestTooLarge)
}

func readAtMost(r io.Reader, limit int64, name string, tooLarge error) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: %w (the limit is %d bytes)", name, tooLarge, limit)
	}
	return b, nil
}
