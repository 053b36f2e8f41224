package blobfsm

// Committed records that the blob is in blobs/.
func (m *Machine) Committed() Actions {
	m.phase = PhaseComplete
	m.commitErr = nil
	return Actions{Wake: true}
}

// CommitFailed records that the commit failed. The bytes stay verified and
// readable; the state is saved so that the next open verifies and commits,
// and RetryCommit tries again in this one.
func (m *Machine) CommitFailed(err error) Actions {
	if m.phase != PhaseCommitting {
		return Actions{}
	}
	m.phase = PhaseCommitFailed
	m.commitErr = err
	return Actions{Save: true, Wake: true}
}

// RetryCommit commits again after a failure.
func (m *Machine) RetryCommit() Actions {
	if m.phase != PhaseCommitFailed {
		return Actions{}
	}
	m.phase = PhaseCommitting
	return Actions{Commit: true}
}

// Adopted records that the complete blob appeared in blobs/, committed by
// someone else: nothing is left to do. The commit vouches for its own
// bytes only: if this blob held bytes it had not verified, which readers
// may have been served, a new epoch starts, so that those readers do not
// end cleanly on the commit's verdict.
func (m *Machine) Adopted() Actions {
	if m.phase == PhaseComplete {
		return Actions{}
	}
	a := Actions{Wake: true}
	if !m.Verified() && m.presentBytes > 0 {
		m.epoch++
		a.SetAside = true
	}
	m.phase = PhaseComplete
	return a
}
