package blobfsm

// Actions is what the driver must do after an event.
type Actions struct {
	Fetch []Run // range requests to start
	// Hash asks for the digest to be fed [HashFrom, HashTo); with
	// HashFinal the hasher then holds the whole blob and gives the verdict.
	Hash             bool
	HashFrom, HashTo int64
	HashFinal        bool
	Sync             bool // start flushing the fully present file early
	Commit           bool // the digest matched: commit the blob
	Replace          bool // a mismatch: swap in a fresh empty file for the new generation
	Save             bool // save the present ranges (after syncing the data)
	SetAside         bool // adopted over unverified bytes: tell whoever may hold copies of them
	Wake             bool // something waiters may care about changed
}
