package cache

import "github.com/imgfs/imgfs/internal/byterange"

// servedRecord is what one reader has been served, kept so that the read
// of the blob's last byte ends cleanly only if the verdict covers every
// byte the reader got. Bytes served before the blob was verified are
// vouched for by its verdict only if they were not dropped or set aside
// since (the blob machine's epoch; see blobfsm.Machine.Epoch); a reader that
// read them again in the current epoch has the current bytes, as a reader
// re-reading a blob after a mismatch does. Guarded by the blob's mu.
type servedRecord struct {
	epoch      uint64        // the machine's epoch of unverified and since
	unverified byterange.Set // served unverified in epoch
	stale      byterange.Set // served unverified in an earlier epoch
	since      byterange.Set // served in epoch, kept only while stale is not empty
}

// served records that r was served in the machine's epoch, verified or not.
func (s *servedRecord) served(epoch uint64, r byterange.Range, verified bool) {
	if epoch != s.epoch {
		for _, old := range s.unverified.Ranges() {
			s.stale.Add(old)
		}
		s.epoch, s.unverified, s.since = epoch, byterange.Set{}, byterange.Set{}
	}
	if s.stale.Size() > 0 {
		s.since.Add(r)
	}
	if !verified {
		s.unverified.Add(r)
	}
}

// vouched reports whether every byte served unverified in an earlier
// epoch has been served again since.
func (s *servedRecord) vouched() bool {
	for _, old := range s.stale.Ranges() {
		if s.since.MissingSize(old) > 0 {
			return false
		}
	}
	return true
}

// tracking reports whether the record holds anything a later read must
// account for: bytes served unverified, now or in an earlier epoch.
func (s *servedRecord) tracking() bool {
	return s.unverified.Size() > 0 || s.stale.Size() > 0
}
