package lang

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// parallelParseMin is the size from which a Sandboxfile is parsed in pieces.
const parallelParseMin = 32 << 10

// parseConfig parses a Sandboxfile. A large file is cut at top-level item boundaries and the
// pieces are parsed concurrently, each at its true position in the file, then joined into one
// body. hclsyntax's tokenizer dominates the cost of a big file, and much of it is regrowing
// one token slice for the whole file, so pieces are cheaper even on one core. Any error falls
// back to parsing the whole file at once, so diagnostics are exactly those of a plain parse.
func parseConfig(src []byte, filename string) (*hcl.File, hcl.Diagnostics) {
	return parsePieces(src, filename, parallelParseMin, minPiece)
}

// minPiece is the smallest piece worth parsing on its own.
const minPiece = 4 << 10

// parsePieces is parseConfig with its sizes as parameters, so that tests can cut small files.
func parsePieces(src []byte, filename string, minFile, minPiece int) (*hcl.File, hcl.Diagnostics) {
	if len(src) < minFile {
		return hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	}
	// Pieces of a few KiB: many goroutines' worth of work, and token slices that stay small
	// (hclsyntax appends every token of a parse to one slice, so one big slice is copied over
	// and over as it grows).
	cuts := topLevelCuts(src, len(src)/minPiece, minPiece)
	if len(cuts) < 2 {
		return hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	}
	bounds := append([]int{0}, cuts...)
	bounds = append(bounds, len(src))
	type piece struct {
		file  *hcl.File
		diags hcl.Diagnostics
	}
	pieces := make([]piece, len(bounds)-1)
	starts := positions(src, bounds[:len(bounds)-1])
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i := range pieces {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			f, d := hclsyntax.ParseConfig(src[bounds[i]:bounds[i+1]], filename, starts[i])
			pieces[i] = piece{f, d}
		}()
	}
	wg.Wait()

	end := positions(src, []int{len(src)})[0]
	body := &hclsyntax.Body{
		Attributes: hclsyntax.Attributes{},
		SrcRange:   hcl.Range{Filename: filename, Start: hcl.InitialPos, End: end},
		EndRange:   hcl.Range{Filename: filename, Start: end, End: end},
	}
	for _, p := range pieces {
		if p.diags.HasErrors() || p.file == nil {
			return hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
		}
		pb := p.file.Body.(*hclsyntax.Body)
		for name, attr := range pb.Attributes {
			if _, dup := body.Attributes[name]; dup {
				return hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
			}
			body.Attributes[name] = attr
		}
		body.Blocks = append(body.Blocks, pb.Blocks...)
	}
	return &hcl.File{Body: body, Bytes: src, Nav: topLevelNav{body}}, nil
}

// positions returns the hcl.Pos of each byte offset (sorted ascending) in src.
func positions(src []byte, offsets []int) []hcl.Pos {
	out := make([]hcl.Pos, len(offsets))
	line, lineStart, from := 1, 0, 0
	for i, off := range offsets {
		for j := from; j < off; j++ {
			if src[j] == '\n' {
				line++
				lineStart = j + 1
			}
		}
		from = off
		col := 1 + utf8.RuneCount(src[lineStart:off])
		out[i] = hcl.Pos{Line: line, Column: col, Byte: off}
	}
	return out
}

// topLevelCuts returns offsets of line starts that begin a new top-level item, about len/n
// bytes apart: never inside a block, brackets, a string, a template, a heredoc or a comment.
// It returns nil when it cannot tell (the caller then parses the whole file at once).
func topLevelCuts(src []byte, n, minPiece int) []int {
	target := max(len(src)/max(n, 1), minPiece)
	type frame struct {
		str   bool // inside a quoted string
		depth int  // bracket depth, in a code frame
	}
	stack := []frame{{}}
	var cuts []int
	last := 0
	for i := 0; i < len(src); {
		top := &stack[len(stack)-1]
		c := src[i]
		if top.str {
			switch {
			case c == '\\':
				i += 2
			case c == '"':
				stack = stack[:len(stack)-1]
				i++
			case (c == '$' || c == '%') && i+2 < len(src) && src[i+1] == c && src[i+2] == '{':
				i += 3 // $${ and %%{ are literal
			case (c == '$' || c == '%') && i+1 < len(src) && src[i+1] == '{':
				stack = append(stack, frame{})
				i += 2
			case c == '\n':
				return nil // unterminated string: leave it to the parser
			default:
				i++
			}
			continue
		}
		switch {
		case c == '#' || c == '/' && i+1 < len(src) && src[i+1] == '/':
			for i < len(src) && src[i] != '\n' {
				i++
			}
			continue
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			end := bytes.Index(src[i+2:], []byte("*/"))
			if end < 0 {
				return nil
			}
			i += end + 4
			continue
		case c == '"':
			stack = append(stack, frame{str: true})
		case c == '<' && i+1 < len(src) && src[i+1] == '<':
			next, ok := skipHeredoc(src, i)
			if !ok {
				return nil
			}
			i = next
			continue
		case c == '{' || c == '[' || c == '(':
			top.depth++
		case c == '}' || c == ']' || c == ')':
			if top.depth == 0 {
				if len(stack) == 1 {
					return nil
				}
				stack = stack[:len(stack)-1] // end of a template interpolation
			} else {
				top.depth--
			}
		case c == '\n':
			if len(stack) == 1 && top.depth == 0 && i+1-last >= target && i+1 < len(src) {
				cuts = append(cuts, i+1)
				last = i + 1
			}
		}
		i++
	}
	if len(stack) != 1 || stack[0].depth != 0 {
		return nil
	}
	return cuts
}

// skipHeredoc skips a heredoc starting at src[i] ("<<ID" or "<<-ID", then lines up to one that
// is ID alone), returning the offset after its closing line.
func skipHeredoc(src []byte, i int) (int, bool) {
	j := i + 2
	if j < len(src) && src[j] == '-' {
		j++
	}
	k := j
	for k < len(src) && (src[k] == '_' || src[k] == '-' || src[k] >= '0' && src[k] <= '9' || src[k] >= 'a' && src[k] <= 'z' || src[k] >= 'A' && src[k] <= 'Z') {
		k++
	}
	if k == j || k >= len(src) || src[k] != '\n' && src[k] != '\r' {
		return 0, false
	}
	id := string(src[j:k])
	for pos := bytes.IndexByte(src[k:], '\n') + k + 1; pos < len(src); {
		end := bytes.IndexByte(src[pos:], '\n')
		line := src[pos:]
		if end >= 0 {
			line = src[pos : pos+end]
		}
		if strings.TrimSpace(string(line)) == id {
			return pos + len(line), true
		}
		if end < 0 {
			break
		}
		pos += end + 1
	}
	return 0, false
}

// topLevelNav names the top-level block around an offset, as hclsyntax's own navigation does,
// so diagnostics read "in sandbox "db"" for a file parsed in pieces too.
type topLevelNav struct{ body *hclsyntax.Body }

func (n topLevelNav) ContextString(offset int) string {
	for _, b := range n.body.Blocks {
		if b.Range().ContainsOffset(offset) {
			if len(b.Labels) == 0 {
				return b.Type
			}
			labels := make([]string, len(b.Labels))
			for i, l := range b.Labels {
				labels[i] = fmt.Sprintf("%q", l)
			}
			return b.Type + " " + strings.Join(labels, " ")
		}
	}
	return ""
}
