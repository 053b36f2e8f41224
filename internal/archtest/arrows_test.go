package archtest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/imgfs/imgfs"

// The map is the README's table between these markers: one row a package,
// its path in backticks, then the packages it may import, each in
// backticks. A pattern ending in /... stands for a tree.
const (
	mapStart = "<!-- arrows: the test in internal/archtest reads this table -->"
	mapEnd   = "<!-- /arrows -->"
)

// forbidden are packages outside the module that a package must not reach
// even indirectly: the boundaries the README names in words.
var forbidden = map[string][]string{
	"fetch":              {"github.com/hanwen/go-fuse/v2/..."},
	"fusefs":             {"net/http", "oras.land/oras-go/v2/...", "github.com/imgfs/imgfs/cache/..."},
	"cache":              {"net/http", "oras.land/oras-go/v2/...", "github.com/hanwen/go-fuse/v2/..."},
	"internal/layer/...": {"net/http", "github.com/hanwen/go-fuse/v2/..."},
}

// forbiddenDirect are packages a package must not import itself. The
// blob state machine does no I/O and starts nothing (fmt and time reach
// os and syscall, so this rule is on its own imports; its own test,
// cache/internal/blobfsm/imports_test.go, lists what it may import).
var forbiddenDirect = map[string][]string{
	"cache/internal/blobfsm": {"os", "io", "io/fs", "net", "net/http", "sync", "sync/atomic", "syscall", "log/slog", "context"},
}

// TestArrows fails on any import between the module's packages that the
// README's map does not allow, on any package the map does not name, on
// any row that names no package, and on any forbidden package reached
// indirectly.
func TestArrows(t *testing.T) {
	root := moduleRoot(t)
	allowed, err := readMap(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	pkgs := listPackages(t, root)
	for pkg, imports := range pkgs {
		rule, ok := allowed[pkg]
		if !ok {
			t.Errorf("%s is not on the map in README.md's Architecture section: add its row", pkg)
			continue
		}
		for _, imp := range imports {
			if !matchAny(rule, imp) {
				t.Errorf("%s imports %s, which the map in README.md does not allow", pkg, imp)
			}
		}
	}
	for pkg := range allowed {
		if _, ok := pkgs[pkg]; !ok {
			t.Errorf("README.md's map names %s, which is not a package", pkg)
		}
	}
	for pkg, bans := range forbiddenDirect {
		for _, imp := range stdImports(t, root, pkg) {
			if matchAny(bans, imp) {
				t.Errorf("%s imports %s, which it must not", pkg, imp)
			}
		}
	}
	for pattern, bans := range forbidden {
		for pkg := range pkgs {
			if !match(pattern, pkg) {
				continue
			}
			for _, dep := range deps(t, root, pkg) {
				if matchAny(bans, strings.TrimPrefix(dep, module+"/")) || matchAny(bans, dep) {
					t.Errorf("%s reaches %s, which it must not even indirectly", pkg, dep)
				}
			}
		}
	}
}

// TestMapRules checks the matching the map relies on.
func TestMapRules(t *testing.T) {
	for _, tt := range []struct {
		pattern, pkg string
		want         bool
	}{
		{"cache", "cache", true},
		{"cache", "cache/gc", false},
		{"cache/...", "cache", true},
		{"cache/...", "cache/internal/blobfsm", true},
		{"cache/...", "cachex", false},
		{"net/http", "net/http/httptrace", false},
	} {
		if got := match(tt.pattern, tt.pkg); got != tt.want {
			t.Errorf("match(%q, %q) = %v, want %v", tt.pattern, tt.pkg, got, tt.want)
		}
	}
	rows := "x\n" + mapStart + "\n| package | may import |\n|---|---|\n| `a` | `b`, `c/...` |\n| `b` | |\n" + mapEnd + "\n"
	got, err := parseMap([]byte(rows))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"a": {"b", "c/..."}, "b": nil}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parseMap = %v, want %v", got, want)
	}
	if _, err := parseMap([]byte("no map here")); err == nil {
		t.Error("parseMap found a map where there is none")
	}
}

func moduleRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func readMap(readme string) (map[string][]string, error) {
	data, err := os.ReadFile(readme)
	if err != nil {
		return nil, err
	}
	return parseMap(data)
}

var ticked = regexp.MustCompile("`([^`]+)`")

func parseMap(data []byte) (map[string][]string, error) {
	_, rest, ok := bytes.Cut(data, []byte(mapStart))
	if !ok {
		return nil, fmt.Errorf("README.md has no %q", mapStart)
	}
	table, _, ok := bytes.Cut(rest, []byte(mapEnd))
	if !ok {
		return nil, fmt.Errorf("README.md has no %q", mapEnd)
	}
	out := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(table))
	for sc.Scan() {
		cells := strings.Split(strings.Trim(strings.TrimSpace(sc.Text()), "|"), "|")
		if len(cells) != 2 {
			continue
		}
		name := ticked.FindStringSubmatch(cells[0])
		if name == nil {
			continue // the header and its rule
		}
		var may []string
		for _, m := range ticked.FindAllStringSubmatch(cells[1], -1) {
			may = append(may, m[1])
		}
		if _, dup := out[name[1]]; dup {
			return nil, fmt.Errorf("the map names %s twice", name[1])
		}
		out[name[1]] = may
	}
	return out, sc.Err()
}

// listPackages returns each package of the module, relative to it, with
// the module's packages its non-test files import.
func listPackages(t *testing.T, root string) map[string][]string {
	out := goList(t, root, "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...")
	pkgs := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module+"/")
		if pkg == module {
			pkg = "."
		}
		var imports []string
		for _, imp := range fields[1:] {
			if rel, ok := strings.CutPrefix(imp, module+"/"); ok {
				imports = append(imports, rel)
			}
		}
		sort.Strings(imports)
		pkgs[pkg] = imports
	}
	return pkgs
}

// stdImports returns every import of pkg's non-test files.
func stdImports(t *testing.T, root, pkg string) []string {
	return strings.Fields(goList(t, root, "-f", "{{join .Imports \" \"}}", "./"+pkg))
}

// deps returns every package pkg reaches, its own files excluded.
func deps(t *testing.T, root, pkg string) []string {
	out := strings.Fields(goList(t, root, "-deps", "-f", "{{.ImportPath}}", "./"+pkg))
	return slices.DeleteFunc(out, func(p string) bool { return p == module+"/"+pkg })
}

func goList(t *testing.T, root string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

func matchAny(patterns []string, pkg string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return match(p, pkg) })
}

// match reports whether pkg is pattern, or lies under it when pattern ends
// in /... .
func match(pattern, pkg string) bool {
	if tree, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == tree || strings.HasPrefix(pkg, tree+"/")
	}
	return path.Clean(pattern) == pkg
}
