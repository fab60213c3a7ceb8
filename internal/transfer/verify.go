package transfer

import (
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// VerifyReader passes a blob's bytes through while hashing them. At the end
// it returns ErrDigestMismatch or ErrSizeMismatch instead of io.EOF when the
// bytes are not the descriptor's, and it never yields more than desc.Size
// bytes.
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
	if v.n+int64(n) > v.desc.Size {
		n = int(v.desc.Size - v.n)
		err = fmt.Errorf("%s: %w: more than %d bytes", v.desc.Digest, ErrSizeMismatch, v.desc.Size)
	}
	v.n += int64(n)
	v.verifier.Write(p[:n])
	if err == io.EOF {
		err = v.check()
	}
	if err != nil {
		v.err = err
	}
	return n, err
}

// Verify reads what is left and reports whether the whole blob was right.
func (v *VerifyReader) Verify() error {
	if v.err == nil {
		_, err := io.Copy(io.Discard, v)
		if err != nil {
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
		return fmt.Errorf("%s: %w: got %d bytes, want %d", v.desc.Digest, ErrSizeMismatch, v.n, v.desc.Size)
	}
	if !v.verifier.Verified() {
		return fmt.Errorf("%s: %w", v.desc.Digest, ErrDigestMismatch)
	}
	return io.EOF
}
