package fusefs

// Stats is a snapshot of a mounted filesystem's counters, the "fusefs"
// part of .imgfs/stats.json.
type Stats = fsStats

// Stats returns the filesystem's counters, for exporters such as a
// metrics endpoint that must not read the mount from its own process.
func (s *Server) Stats() Stats { return s.fsys.stats.snapshot() }
