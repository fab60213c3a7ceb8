package benchcorpus

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
)

// Kind is the kind of bytes a generated layer holds.
type Kind int

const (
	// Random bytes do not compress, like already-compressed assets or
	// stripped binaries.
	Random Kind = iota
	// Text is word soup from a fixed vocabulary: it compresses about 4:1
	// with gzip, like configuration, scripts and documentation.
	Text
)

func (k Kind) String() string {
	if k == Text {
		return "text"
	}
	return "random"
}

// seedFor derives a layer's 32-byte PRNG seed from the corpus seed and the
// layer's name, so every layer's bytes depend only on those two.
func seedFor(seed uint64, name string) [32]byte {
	return sha256.Sum256([]byte(fmt.Sprintf("ferry-bench/%d/%s", seed, name)))
}

// newContent returns a reader of n deterministic bytes of kind k.
func newContent(k Kind, seed [32]byte, n int64) io.Reader {
	if k == Text {
		return io.LimitReader(newTextReader(seed), n)
	}
	return io.LimitReader(rand.NewChaCha8(seed), n)
}

// vocabulary holds 256 pseudo-words, one per byte value of the PRNG.
var vocabulary = func() [256][]byte {
	var v [256][]byte
	r := rand.New(rand.NewPCG(1, 2))
	for i := range v {
		w := make([]byte, 2+r.IntN(9))
		for j := range w {
			w[j] = 'a' + byte(r.IntN(26))
		}
		v[i] = w
	}
	return v
}()

// textReader yields an endless stream of words from vocabulary, chosen by a
// PRNG, separated by spaces and newlines.
type textReader struct {
	r     *rand.Rand
	line  []byte // storage for the current line
	avail []byte // what is left of it to read
}

func newTextReader(seed [32]byte) *textReader {
	pcg := rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:16]))
	return &textReader{r: rand.New(pcg)}
}

func (t *textReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(t.avail) == 0 {
			t.fill()
		}
		c := copy(p[n:], t.avail)
		t.avail = t.avail[c:]
		n += c
	}
	return n, nil
}

// fill makes the next line of eight words.
func (t *textReader) fill() {
	line := t.line[:0]
	x := t.r.Uint64()
	for i := 0; i < 8; i++ {
		line = append(line, vocabulary[byte(x>>(8*i))]...)
		line = append(line, ' ')
	}
	line[len(line)-1] = '\n'
	t.line, t.avail = line, line
}
