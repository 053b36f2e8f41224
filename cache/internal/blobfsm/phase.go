package blobfsm

// Phase is where a blob is in its lifecycle.
type Phase uint8

// The phases, in the order a blob goes through them. A mismatch goes back
// to PhaseFetching in a new generation; a failed commit is retried from
// PhaseCommitFailed.
const (
	PhaseFetching     Phase = iota // some bytes are missing
	PhaseVerifying                 // all present; the digest is being finished
	PhaseCommitting                // the digest matched; the commit is running
	PhaseComplete                  // committed into blobs/
	PhaseCommitFailed              // verified, but the commit failed; retryable
)

// String names the phase, for logs and test failures.
func (p Phase) String() string {
	return [...]string{"fetching", "verifying", "committing", "complete", "commit-failed"}[p]
}
