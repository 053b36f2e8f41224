package blobfsm

import (
	"slices"

	"github.com/imgfs/imgfs/internal/byterange"
)

// What the driver reads of the machine between events: to decide whether
// a read may be served, what a waiter counts as progress, what to save
// and what to log. Nothing here changes the machine, and nothing returned
// aliases its state.

// Gen returns the current generation. Events carry the generation they
// were started in; the machine ignores those of an older one.
func (m *Machine) Gen() uint64 { return m.gen }

// Epoch counts the times bytes that readers may have been served
// unverified were dropped or set aside. A reader served unverified bytes
// in one epoch must not end cleanly in another.
func (m *Machine) Epoch() uint64 { return m.epoch }

// Phase returns where the blob is in its lifecycle.
func (m *Machine) Phase() Phase { return m.phase }

// HashedTo returns how far the digest reaches: it covers [0, HashedTo()).
func (m *Machine) HashedTo() int64 { return m.hashedTo }

// PresentBytes returns how many bytes of the blob are present.
func (m *Machine) PresentBytes() int64 { return m.presentBytes }

// Holds reports whether every byte of r is present.
func (m *Machine) Holds(r byterange.Range) bool { return m.present.Contains(r) }

// MissingBytes returns how many bytes of r are not present.
func (m *Machine) MissingBytes(r byterange.Range) int64 { return m.present.MissingSize(r) }

// PresentRanges returns the present bytes as sorted, disjoint ranges: what
// the driver saves for a later process to resume from.
func (m *Machine) PresentRanges() []byterange.Range { return slices.Clone(m.present.Ranges()) }

// FetchedRanges returns the ranges landed in this generation, which a
// mismatch names in its log.
func (m *Machine) FetchedRanges() []byterange.Range { return slices.Clone(m.fetched.Ranges()) }

// Progress counts landings and hashing steps, so that a waiter can tell
// a slow blob from a stalled one.
func (m *Machine) Progress() uint64 { return m.progress }

// Failures counts failed runs and hashers, so that a waiter notices one.
func (m *Machine) Failures() uint64 { return m.failures }

// LastErr returns the latest failure.
func (m *Machine) LastErr() error { return m.lastErr }

// CommitErr returns why the last commit failed, or nil.
func (m *Machine) CommitErr() error { return m.commitErr }
