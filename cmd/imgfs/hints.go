package main

import (
	"errors"

	"github.com/imgfs/imgfs/cache"
	"github.com/imgfs/imgfs/fetch"
	"github.com/imgfs/imgfs/internal/imagemount"
)

// The libraries' errors say what failed; the command line knows which of
// its flags fixes it. withHint adds that, once, at the end of the message
// the user sees.
func withHint(err error) error {
	if err == nil {
		return nil
	}
	var h hinted
	if errors.As(err, &h) {
		return err
	}
	if s := hint(err); s != "" {
		return hinted{err: err, hint: s}
	}
	return err
}

// hint returns the flags or commands that fix err, as text to append to
// its message, or "".
func hint(err error) string {
	var auth *fetch.AuthError
	switch {
	case errors.As(err, &auth):
		switch auth.Failure {
		case fetch.NoCredentials:
			return "; check credentials (--user, or docker login " + auth.Host + ")"
		case fetch.HelperFailed:
			return "; fix the helper named in $DOCKER_CONFIG/config.json (credHelpers, credsStore), or pass --user"
		case fetch.CredentialsRefused:
			return "; check the user name and password (--user, or docker login " + auth.Host + ")"
		case fetch.Refused:
			return ", check credentials (--user, or docker login)"
		}
	case errors.Is(err, fetch.ErrUntrustedTLS):
		return " (pass --tlscacert FILE to trust its CA, or --skip-verify)"
	case errors.Is(err, fetch.ErrBadCertificate):
		return " (pass --tlscacert FILE, or --skip-verify)"
	case errors.Is(err, fetch.ErrCACertificates):
		return " (--tlscacert)"
	case errors.Is(err, cache.ErrDirUnusable):
		return " (set --cache-dir or IMGFS_CACHE_DIR)"
	case errors.Is(err, cache.ErrOverCap):
		return " (--cache-max-size)"
	case errors.Is(err, imagemount.ErrNotCached):
		return " (--offline mounts only what the cache has: mount the image once online, or imgfs fetch --metadata-only it)"
	case errors.Is(err, fetch.ErrNoPlatform):
		return "; pick one with --platform or use --all-platforms"
	}
	return ""
}

// hinted is an error with its fix appended.
type hinted struct {
	err  error
	hint string
}

func (h hinted) Error() string { return h.err.Error() + h.hint }
func (h hinted) Unwrap() error { return h.err }
