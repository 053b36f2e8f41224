package testregistry

import "os"

// Log returns the registry's log. A mirror's includes its access log,
// one line per request.
func (r *Registry) Log() string {
	b, _ := os.ReadFile(r.log)
	return string(b)
}
