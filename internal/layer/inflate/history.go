package inflate

// History returns a copy of the last WindowSize bytes of output before the
// current position, or all of it when the stream has made less, running
// back across member boundaries. Window stops at the current member's
// start, which is all a later match may refer to; History is for writers
// of formats that record the output itself, as SOCI's zinfo does (zlib's
// zran keeps one sliding window for the whole stream). Called from
// OnBoundary, it ends at that boundary's out.
func (f *Reader) History() []byte {
	w := min(WindowSize, len(f.out))
	return append([]byte(nil), f.out[len(f.out)-w:]...)
}
