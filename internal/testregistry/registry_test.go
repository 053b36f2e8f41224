package testregistry

import (
	"errors"
	"testing"
)

func TestStartProcessNotInstalled(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := StartProcess(t.TempDir())
	if !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("StartProcess with no docker-registry on PATH: %v, want ErrNotInstalled", err)
	}
}

func TestMirrorServesUpstream(t *testing.T) {
	up := Start(t)
	pushed, err := up.PushImage("mirrored/app", "v1", Image{Layers: []Layer{TarLayer(Gzip, BytesFile("hello", []byte("hi\n")))}})
	if err != nil {
		t.Fatal(err)
	}
	m := Mirror(t, up.Host())
	desc, body, err := m.GetManifest("mirrored/app", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != pushed.Manifest.Digest || string(body) != string(pushed.ManifestBytes) {
		t.Fatalf("mirror served %s, upstream has %s", desc.Digest, pushed.Manifest.Digest)
	}
}

func TestCloseTwice(t *testing.T) {
	r := Start(t)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}
