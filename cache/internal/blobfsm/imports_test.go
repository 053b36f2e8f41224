package blobfsm

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// allowedImports are all the package may import: values and pure helpers.
// Nothing here does I/O, starts goroutines, locks or reads the clock
// (time is here for time.Time and time.Duration values the events carry),
// so a machine built on them cannot either.
var allowedImports = map[string]bool{
	"errors":  true,
	"fmt":     true,
	"math":    true,
	"slices":  true,
	"sort":    true,
	"strconv": true,
	"strings": true,
	"time":    true,

	"github.com/imgfs/imgfs/internal/byterange": true,
	"github.com/imgfs/imgfs/internal/errdefs":   true,
}

// TestImportsArePure keeps the machine pure in a way the compiler checks:
// a file that imports os, net, sync, io or log (or anything else not
// allowed) fails here, whatever the code does with it.
func TestImportsArePure(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatalf("%s: import %s: %v", name, imp.Path.Value, err)
			}
			if !allowedImports[path] {
				t.Errorf("%s imports %q: the machine may import only values and pure helpers (see allowedImports)", name, path)
			}
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no source files found: the test runs in the wrong directory")
	}
}
