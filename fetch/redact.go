package fetch

import (
	"errors"
	"net/url"
	"regexp"
)

// redactURL returns u fit for a log or an error: without user info, and
// with any query replaced by "redacted". Signed redirect URLs (to S3, GCS,
// a CDN) carry their credentials in the query.
func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	if c.RawQuery != "" || c.ForceQuery {
		c.RawQuery, c.ForceQuery = "redacted", false
	}
	c.Fragment, c.RawFragment = "", ""
	return c.String()
}

// urlQuery matches the query of a URL inside free text.
var urlQuery = regexp.MustCompile(`(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'?#]*)\?[^\s"'#]*`)

// redactQueries replaces the query of every URL in s by "redacted".
func redactQueries(s string) string {
	return urlQuery.ReplaceAllString(s, "${1}?redacted")
}

// redactError returns err with the queries of the URLs it quotes redacted:
// the request URL of a *url.Error, and any URL a lower layer wrote into its
// message. errors.Is and errors.As still see the original chain.
func redactError(err error) error {
	if err == nil {
		return nil
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			ue.URL = redactURL(u)
		} else {
			ue.URL = redactQueries(ue.URL)
		}
	}
	msg := err.Error()
	if red := redactQueries(msg); red != msg {
		return &redactedError{msg: red, err: err}
	}
	return err
}

// redactedError shows a redacted message for err.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
