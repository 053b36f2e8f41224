package gc

import (
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/imgfs/imgfs/cache"
)

// PruneOptions say what a prune removes. Whatever they say, it never
// removes a blob a live pin names (a mount in any process), nor the file
// copies or index of such a layer, nor a partial whose writer lock a live
// process holds.
type PruneOptions struct {
	// All removes every blob, file copy and layer index not pinned, and
	// so every reference whose root goes with them, and every dead
	// mount's log.
	All bool
	// MaxSize, if at least 0, removes complete and partial blobs and file
	// copies least recently used first until Usage.Capped is at most
	// MaxSize; a blob takes its layer's copies and index with it.
	MaxSize int64
	// OlderThan, if positive, removes the blobs and file copies last used
	// before then.
	OlderThan time.Duration
	// Now is the time OlderThan counts back from; zero means time.Now.
	Now time.Time
}

// Without All, MaxSize or OlderThan, a prune removes only garbage: blobs
// no reference reaches (last used over unreferencedGrace ago, so that a
// fetch between its commit and its index.json entry keeps its blobs),
// their indexes and sources, references whose root is gone, stale pins,
// and the logs of dead mounts beyond the newest keptDeadLogs. The LRU
// passes (MaxSize, OlderThan) leave the indexes and manifests that
// references walk through: they are small, and they keep references
// resolvable.
const (
	unreferencedGrace = 10 * time.Minute
	keptDeadLogs      = 5
)

// Why a prune removes a blob or file copies (PrunedBlob.Reason,
// PrunedFileCopies.Reason). OlderThan's reason is "older than" and the
// duration.
const (
	ReasonAll          = "all"                 // PruneOptions.All
	ReasonUnreferenced = "unreferenced"        // no reference reaches it
	ReasonWithLayer    = "with its layer"      // a copy whose layer's blob goes
	ReasonOverMaxSize  = "over the size limit" // PruneOptions.MaxSize
)

// PrunedBlob is one blob a prune removed (or would).
type PrunedBlob struct {
	BlobInfo
	Reason string `json:"reason"`
}

// PrunedFileCopies are the file copies of one layer a prune removed (or
// would), for one reason.
type PrunedFileCopies struct {
	Layer     digest.Digest `json:"layer"`
	LayerSize int64         `json:"layer_size"`
	Copies    int           `json:"copies"`
	DiskBytes int64         `json:"disk_bytes"`
	Reason    string        `json:"reason"`
}

// PruneReport says what a prune removed (Plan.Apply), or would (Plan.Report,
// with DryRun set).
type PruneReport struct {
	Blobs      []PrunedBlob       `json:"blobs"`
	FileCopies []PrunedFileCopies `json:"file_copies"`
	Refs       []string           `json:"refs"`
	Indexes    int                `json:"indexes"`
	Sources    int                `json:"sources"`
	StalePins  int                `json:"stale_pins"`
	Logs       int                `json:"logs"`
	Freed      int64              `json:"freed"` // bytes on disk
	KeptPinned int                `json:"kept_pinned"`
	// KeptPinnedCopies counts the file copies kept because a live pin
	// names their layer.
	KeptPinnedCopies int  `json:"kept_pinned_file_copies"`
	KeptInUse        int  `json:"kept_in_use"`
	DryRun           bool `json:"dry_run,omitempty"`
}

// A Plan is what a prune removes and why, worked out from one look at the
// cache, removing nothing. Report says what it would remove; Apply removes
// it. Most of it depends on blobs going (a layer's copies and index, a
// reference whose root goes, a blob's sources): Apply removes those only
// once the blobs they depend on are gone, so a blob that cannot be
// removed keeps what depends on it.
type Plan struct {
	s         *cache.Store
	pinned    map[digest.Digest]bool // by live pins, when planned
	stalePins []string

	blobs   []PrunedBlob // in inventory order
	copies  []plannedCopy
	refs    []plannedRef
	indexes []plannedFile
	sources []plannedFile
	logs    []plannedFile

	keptPinned, keptPinnedCopies, keptInUse int
}

// plannedCopy is a file copy a plan removes. Each planned item lists in
// needs the blobs (by digest) that must be gone before it goes.
type plannedCopy struct {
	path      string
	layer     digest.Digest
	layerSize int64
	diskBytes int64
	reason    string
	needs     []digest.Digest
}

// plannedRef is a reference a plan drops from index.json.
type plannedRef struct {
	name  string
	needs []digest.Digest
}

// plannedFile is a layer index, a sources record or a log a plan removes.
type plannedFile struct {
	path      string
	diskBytes int64
	needs     []digest.Digest
}

// Prune plans a prune as opts say and applies the plan at once.
func Prune(s *cache.Store, opts PruneOptions) (PruneReport, error) {
	p, err := PlanPrune(s, opts)
	if err != nil {
		return PruneReport{}, err
	}
	return p.Apply()
}

// PlanPrune works out what a prune as opts say would remove, and why:
// first the four policies, each taking what it applies to and naming the
// reason (All, unreferenced, OlderThan, MaxSize, in that order of
// precedence), then what goes with what they take.
func PlanPrune(s *cache.Store, opts PruneOptions) (*Plan, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	pins, stale, err := livePins(s)
	if err != nil {
		return nil, fmt.Errorf("prune: read pins: %w", err)
	}
	inv, err := TakeInventory(s)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	usage, err := DiskUsage(s)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	c := newChoice(s, opts, inv, pinnedSet(pins, nil))
	c.keepPinnedAndInUse()
	if opts.All {
		c.takeAll()
	}
	c.takeUnreferenced()
	if opts.OlderThan > 0 {
		c.takeOlderThan(opts.OlderThan)
	}
	if opts.MaxSize >= 0 && !opts.All {
		c.takeOverMaxSize(usage.Capped(), opts.MaxSize)
	}
	p := c.plan()
	p.stalePins = stale
	return p, nil
}
