package fetch

// AuthFailure says why a registry refused a request, so that a caller can
// name the fix its user has at hand.
type AuthFailure int

// Why a registry refused a request.
const (
	// NoCredentials: the registry asked for credentials and none were
	// given.
	NoCredentials AuthFailure = iota + 1
	// HelperFailed: the docker credential helper that should have given
	// them failed.
	HelperFailed
	// CredentialsRefused: the registry's token service refused the
	// credentials given.
	CredentialsRefused
	// Refused: the registry answered 401 or 403 to a request.
	Refused
)

// AuthError is a refusal by a registry. Its message names what was
// refused and by whom; it wraps ErrUnauthorized.
type AuthError struct {
	// Host is the registry host that refused, "" when the message names
	// only what was asked for.
	Host    string
	Failure AuthFailure
	err     error
}

func (e *AuthError) Error() string { return e.err.Error() }
func (e *AuthError) Unwrap() error { return e.err }
