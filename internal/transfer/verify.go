package transfer

import (
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-oci/ferry/manifests"
)

// VerifyReader passes a blob's bytes through while hashing them; it is
// ferry's one verifying reader (the copy engine's, and the embedded
// registry's when it serves a blob whole). It never yields more than
// desc.Size bytes, and it withholds the read that completes the blob when
// the digest does not match, so a reader never gets a whole blob of wrong
// bytes: that read, and every one after it, returns an error wrapping
// manifests.ErrDigestMismatch or manifests.ErrSizeMismatch instead.
type VerifyReader struct {
	r        io.Reader
	desc     ocispec.Descriptor
	verifier digest.Verifier
	n        int64
	err      error
}

// NewVerifyReader wraps r to check it against desc.
func NewVerifyReader(r io.Reader, desc ocispec.Descriptor) *VerifyReader {
	return &VerifyReader{
		r:        io.LimitReader(r, desc.Size+1),
		desc:     desc,
		verifier: desc.Digest.Verifier(),
	}
}

// Read implements io.Reader.
func (v *VerifyReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	switch {
	case v.n+int64(n) > v.desc.Size:
		err = fmt.Errorf("%s: %w: more than %d bytes", v.desc.Digest, manifests.ErrSizeMismatch, v.desc.Size)
	case err == io.EOF:
		v.add(p[:n])
		err = v.check()
	default:
		v.add(p[:n])
		if n > 0 && v.n == v.desc.Size && !v.verifier.Verified() {
			err = fmt.Errorf("%s: %w", v.desc.Digest, manifests.ErrDigestMismatch)
		}
	}
	if err != nil && err != io.EOF {
		v.err = err
		return 0, err
	}
	if err == io.EOF {
		v.err = err
	}
	return n, err
}

func (v *VerifyReader) add(p []byte) {
	v.n += int64(len(p))
	v.verifier.Write(p)
}

// Verify reads what is left and reports whether the whole blob was right.
func (v *VerifyReader) Verify() error {
	if v.err == nil {
		if _, err := io.Copy(io.Discard, v); err != nil {
			return err
		}
	}
	if v.err == io.EOF {
		return nil
	}
	return v.err
}

func (v *VerifyReader) check() error {
	if v.n != v.desc.Size {
		return fmt.Errorf("%s: %w: got %d bytes, want %d", v.desc.Digest, manifests.ErrSizeMismatch, v.n, v.desc.Size)
	}
	if !v.verifier.Verified() {
		return fmt.Errorf("%s: %w", v.desc.Digest, manifests.ErrDigestMismatch)
	}
	return io.EOF
}
