package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizeUnits are the suffixes parseSize accepts: the SI ones count in
// powers of 1000 and the IEC ones (with an i) in powers of 1024, as
// Kubernetes quantities and du --si do. A trailing B is optional.
var sizeUnits = []struct {
	suffix string
	factor float64
}{
	{"KI", 1 << 10}, {"MI", 1 << 20}, {"GI", 1 << 30}, {"TI", 1 << 40}, {"PI", 1 << 50},
	{"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"P", 1e15},
}

// parseSize parses a byte count such as 500M, 10GiB, 1.5G or 4096.
func parseSize(s string) (int64, error) {
	orig := s
	s = strings.ToUpper(strings.TrimSpace(s))
	s = strings.TrimSuffix(s, "B")
	factor := 1.0
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, factor = strings.TrimSpace(rest), u.factor
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 || math.IsNaN(n) || math.IsInf(n, 0) || n*factor >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q: want a number of bytes with an optional unit, such as 500M, 10GiB or 4096", orig)
	}
	return int64(n * factor), nil
}

// formatSize prints n bytes in IEC units, as du -h does.
func formatSize(n int64) string { return humanSize(float64(n)) }

// humanSize prints bytes (or bytes a second) in IEC units, as ctr and
// du -h do.
func humanSize(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f %s", n, units[i])
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}
