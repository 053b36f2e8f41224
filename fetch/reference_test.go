package fetch

import (
	"errors"
	"testing"
)

func TestParseReference(t *testing.T) {
	const dgst = "sha256:2f1cd90e00fe2c991e18272bb35d6a8258eeb27785d121aa4cc1ae4235167cfd"
	tests := []struct {
		in, want string
	}{
		{"nginx", "docker.io/library/nginx:latest"},
		{"nginx:1.25", "docker.io/library/nginx:1.25"},
		{"user/app", "docker.io/user/app:latest"},
		{"docker.io/nginx", "docker.io/library/nginx:latest"},
		{"index.docker.io/library/nginx:x", "docker.io/library/nginx:x"},
		{"localhost/app", "localhost/app:latest"},
		{"127.0.0.1:5000/a/b:v1", "127.0.0.1:5000/a/b:v1"},
		{"ghcr.io/o/r@" + dgst, "ghcr.io/o/r@" + dgst},
		{"host:5000/r:tag@" + dgst, "host:5000/r:tag@" + dgst},
		{"[::1]:5000/r", "[::1]:5000/r:latest"},
	}
	for _, tt := range tests {
		ref, err := ParseReference(tt.in)
		if err != nil {
			t.Errorf("ParseReference(%q): %v", tt.in, err)
			continue
		}
		if got := ref.String(); got != tt.want {
			t.Errorf("ParseReference(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseReferenceDigestWins(t *testing.T) {
	const dgst = "sha256:2f1cd90e00fe2c991e18272bb35d6a8258eeb27785d121aa4cc1ae4235167cfd"
	ref, err := ParseReference("host:5000/r:tag@" + dgst)
	if err != nil {
		t.Fatal(err)
	}
	if ref.Object() != dgst || ref.Tag != "tag" || ref.APIHost() != "host:5000" {
		t.Errorf("got object %q tag %q host %q", ref.Object(), ref.Tag, ref.APIHost())
	}
	hub, _ := ParseReference("nginx")
	if hub.APIHost() != "registry-1.docker.io" {
		t.Errorf("docker.io API host = %q", hub.APIHost())
	}
}

func TestParseReferenceInvalid(t *testing.T) {
	for _, in := range []string{
		"", "UPPER/Case", "nginx:", "a b", "host:5000/r@sha256:short", "nginx@md5:abc",
		"host:5000/", "repo:bad/tag!", "-leading/dash",
	} {
		if _, err := ParseReference(in); !errors.Is(err, ErrInvalidReference) {
			t.Errorf("ParseReference(%q) = %v, want ErrInvalidReference", in, err)
		}
	}
}
