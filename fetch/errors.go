package fetch

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"unicode"

	"github.com/imgfs/imgfs/internal/errdefs"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// Sentinel errors that callers and tests branch on. Each error the registry
// client returns wraps one of these with the reference or host it concerns.
var (
	ErrNotFound         = errors.New("not found")
	ErrUnauthorized     = errors.New("unauthorized")
	ErrUnreachable      = errors.New("registry unreachable")
	ErrUntrustedTLS     = errors.New("tls: certificate signed by unknown authority")
	ErrBadCertificate   = errors.New("tls")
	ErrCACertificates   = errors.New("CA certificates")
	ErrUnsupported      = errors.New("unsupported")
	ErrUnexpectedStatus = errors.New("unexpected response")
)

// ErrNoPlatform means an index has no manifest for the platforms asked
// for. It is an ErrNotFound.
var ErrNoPlatform = fmt.Errorf("%w", ErrNotFound)

// permanent marks err as an answer that asking again soon will not change
// (401, 403, 404, 416, a Content-Range or length that contradicts the
// descriptor), so that the cache fails reads of the blob fast for a while
// instead of retrying.
func permanent(err error) error {
	return fmt.Errorf("%w: %w", errdefs.ErrPermanent, err)
}

// transportError turns a failed round trip into one line that names the
// host and, where it helps, the fix.
func transportError(host string, err error) error {
	var dnsErr *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var verifyErr *x509.CertificateInvalidError
	var hostErr x509.HostnameError
	var stall *stallError
	switch {
	case errors.As(err, &stall):
		return stall
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return fmt.Errorf("%w: unknown host %s", ErrUnreachable, host)
	case errors.As(err, &dnsErr):
		return fmt.Errorf("%w: cannot resolve %s: %v", ErrUnreachable, host, dnsErr.Err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: %s refused the connection (is the registry running?)", ErrUnreachable, host)
	case errors.As(err, &unknownCA):
		return fmt.Errorf("%w: %s", ErrUntrustedTLS, host)
	case errors.As(err, &hostErr), errors.As(err, &verifyErr):
		return fmt.Errorf("%w: %s: %v", ErrBadCertificate, host, err)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ECONNRESET):
		return fmt.Errorf("%w: %s: %v", ErrUnreachable, host, errors.Unwrap(err))
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return fmt.Errorf("%w: %s: timed out", ErrUnreachable, host)
	}
	return fmt.Errorf("%s: %w", host, err)
}

// statusError explains an HTTP failure status for what, such as a
// reference or a blob digest, reading the registry's error body if any.
func statusError(what string, resp *http.Response) error {
	switch resp.StatusCode {
	case http.StatusNotFound:
		return fmt.Errorf("%w: %s", ErrNotFound, what)
	case http.StatusUnauthorized, http.StatusForbidden:
		return &AuthError{Failure: Refused, err: fmt.Errorf("%w: %s: %s", ErrUnauthorized, what, resp.Status)}
	}
	detail := resp.Status
	var body struct{ Errors errcode.Errors }
	if decodeJSON(resp.Body, &body, 64<<10) == nil && len(body.Errors) > 0 {
		detail += ": " + oneLine(body.Errors[0].Message, 200)
	}
	return fmt.Errorf("%w: %s: %s", ErrUnexpectedStatus, what, detail)
}

// oneLine squeezes text a registry wrote onto one line of at most max
// bytes, so that it cannot forge or flood log lines.
func oneLine(s string, max int) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }), " ")
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return s
}
