package fusefs

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Options configure a mount. The zero value is usable: no passthrough,
// 4 MiB read-ahead, owned by the mounting user and readable by no one else,
// logging to slog.Default.
type Options struct {
	// FsName is the source shown in /proc/mounts and df, such as the image
	// reference. It defaults to "imgfs".
	FsName string

	// Logger receives read errors and mount diagnostics.
	Logger *slog.Logger

	// Debug logs every FUSE request and reply, at debug level.
	Debug bool

	// UID and GID own every file. Zero means the mounting user's.
	UID, GID uint32

	// Passthrough lets the kernel read blobs that the cache holds complete
	// straight from the cache file (FUSE passthrough, Linux 6.9 or later,
	// as root). Other blobs are still read through Blobs.
	Passthrough bool

	// MaxStackDepth is the stacking depth announced for passthrough. Leave
	// it 0 (meaning 1) unless the cache directory is on a stacked
	// filesystem such as overlayfs; then set 2, at the price that the
	// mount itself can no longer be a lower layer of an overlay.
	MaxStackDepth int

	// ReadAheadKB is the kernel read-ahead for the mount. Larger READs and
	// deeper read-ahead are what make sequential reads fast. Zero means
	// 4096; a negative value leaves the kernel default (128).
	ReadAheadKB int

	// AllowOther lets every local user read the mount (allow_other). The
	// kernel otherwise lets only the mounting user in. Mounting with it
	// fails for a non-root user unless /etc/fuse.conf has user_allow_other.
	AllowOther bool

	// ExtraStats, if set, is called on every open of .imgfs/stats.json and
	// its result is shown under "cache".
	ExtraStats func() any
}

// cacheTimeout is how long the kernel may cache entries and attributes.
// Everything in the tree is content-addressed and never changes.
const cacheTimeout = 24 * time.Hour

// Server is a mounted image.
type Server struct {
	srv        *fuse.Server
	mountpoint string
	fsys       *imageFS
}

// Mount checks img, /dev/fuse and the mountpoint, mounts img read-only at
// mountpoint and serves it in the background until unmounted. Blob content
// comes from blobs.
//
// As root the mount is made directly, without fusermount3, which need not
// be installed; FUSE passthrough needs root anyway. Other users mount
// through fusermount3, as a direct mount would fail with EPERM.
func Mount(mountpoint string, img Image, blobs Blobs, opts Options) (*Server, error) {
	abs, err := filepath.Abs(mountpoint)
	if err != nil {
		return nil, fmt.Errorf("mountpoint %s: %w", mountpoint, err)
	}
	index, err := layoutIndex(img)
	if err != nil {
		return nil, err
	}
	if blobs == nil {
		return nil, fmt.Errorf("mount %s: no Blobs", mountpoint)
	}
	if err := CheckFuseDevice(); err != nil {
		return nil, err
	}
	if err := CheckMountpoint(mountpoint); err != nil {
		return nil, err
	}
	if opts.AllowOther && !allowOtherPermitted() {
		return nil, fmt.Errorf("mount %s: allow_other needs root, or user_allow_other in /etc/fuse.conf", mountpoint)
	}

	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	created := img.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	fsys := &imageFS{
		img:         img,
		index:       index,
		blobs:       blobs,
		log:         log,
		passthrough: opts.Passthrough,
		extraStats:  opts.ExtraStats,
		attrs:       attrs{uid: orID(opts.UID, os.Getuid()), gid: orID(opts.GID, os.Getgid()), time: created},
	}

	fo := fsOptions(opts, log)
	fo.MountOptions.DisableXAttrs = img.Files == nil      // the file views show tar xattrs
	fo.MountOptions.DisableReadDirPlus = img.Files != nil // see viewforget.go
	var raw fuse.RawFileSystem = fs.NewNodeFS(&root{dir: dir{attrs: &fsys.attrs}, fsys: fsys}, fo)
	raw = newForgetViews(raw, &fsys.stats)
	raw = &passthroughCounter{RawFileSystem: raw, stats: &fsys.stats}
	raw = &noFlush{RawFileSystem: raw, stats: &fsys.stats}
	srv, err := fuse.NewServer(raw, abs, &fo.MountOptions)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", mountpoint, err)
	}
	go srv.Serve()
	if err := srv.WaitMount(); err != nil {
		srv.Unmount()
		return nil, fmt.Errorf("mount %s: %w", mountpoint, err)
	}

	s := &Server{srv: srv, mountpoint: abs, fsys: fsys}
	if kb := opts.ReadAheadKB; kb >= 0 {
		if kb == 0 {
			kb = 4096
		}
		if err := setReadAhead(abs, kb); err != nil {
			// Only root may write /sys: a rootless mount always lands
			// here, and there is nothing for its user to do about it.
			level := slog.LevelWarn
			if os.Geteuid() != 0 {
				level = slog.LevelDebug
			}
			log.Log(context.Background(), level, "could not raise read-ahead; sequential reads will be slower", "mountpoint", abs, "err", err)
		}
	}
	return s, nil
}

// fsOptions translates Options into go-fuse options. See FIELD-NOTES for
// the measurements behind each choice.
func fsOptions(opts Options, log *slog.Logger) *fs.Options {
	timeout := cacheTimeout
	name := opts.FsName
	if name == "" {
		name = "imgfs"
	}
	var disabled uint64
	if !opts.Passthrough {
		// Without passthrough the kernel does not count the mount as a
		// stacked filesystem, so overlayfs can use it as a lower layer.
		disabled = fuse.CAP_PASSTHROUGH
	}
	debugLevel := slog.LevelWarn
	if opts.Debug {
		debugLevel = slog.LevelDebug
	}
	asRoot := os.Geteuid() == 0
	return &fs.Options{
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &timeout,
		Logger:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		MountOptions: fuse.MountOptions{
			FsName: name,
			Name:   "imgfs",
			// ro for fusermount3; MS_RDONLY for a direct mount.
			Options:                  []string{"ro", "default_permissions"},
			DirectMountFlags:         unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV,
			DirectMountStrict:        asRoot,
			AllowOther:               opts.AllowOther,
			DisableXAttrs:            true,
			ExplicitDataCacheControl: true,
			MaxBackground:            64,
			MaxWrite:                 1 << 20,
			DisableSplice:            true,
			MaxStackDepth:            opts.MaxStackDepth,
			DisabledCapabilities:     disabled,
			Debug:                    opts.Debug,
			Logger:                   slog.NewLogLogger(log.Handler(), debugLevel),
		},
	}
}

// allowOtherPermitted reports whether allow_other will be accepted: always
// for root, otherwise only with user_allow_other in /etc/fuse.conf.
func allowOtherPermitted() bool {
	if os.Geteuid() == 0 {
		return true
	}
	conf, err := os.ReadFile("/etc/fuse.conf")
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(conf)) {
		if strings.TrimSpace(line) == "user_allow_other" {
			return true
		}
	}
	return false
}

// setReadAhead sets the read-ahead of the mount's backing device. The
// kernel resets it on every mount, and without it buffered READs stay
// small whatever MaxWrite allows. The device number comes from the mount
// table rather than from stat, so this process sends no request to its own
// mount.
func setReadAhead(mountpoint string, kb int) error {
	m, ok, err := findMount(mountpoint)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s is not in the mount table", mountpoint)
	}
	knob := "/sys/class/bdi/" + m.dev + "/read_ahead_kb"
	if err := os.WriteFile(knob, []byte(strconv.Itoa(kb)), 0); err != nil {
		return fmt.Errorf("set read-ahead: %w", err)
	}
	return nil
}

func orID(id uint32, dflt int) uint32 {
	if id != 0 {
		return id
	}
	return uint32(dflt)
}

// Wait blocks until the filesystem is unmounted and no longer served. After
// a lazy unmount that is when the last open file is closed.
func (s *Server) Wait() { s.srv.Wait() }

// stats returns the filesystem's counters, as in .imgfs/stats.json.
func (s *Server) stats() fsStats { return s.fsys.stats.snapshot() }

// Unmount unmounts the filesystem. If files are still open it detaches the
// mount lazily instead (MNT_DETACH): the path is free at once, and the
// mount goes away when the last file is closed.
func (s *Server) Unmount() error {
	if _, ok, err := findMount(s.mountpoint); err == nil && !ok {
		return nil // already unmounted, e.g. by imgfs unmount
	}
	err := s.srv.Unmount()
	if err == nil {
		return nil
	}
	if derr := umount(s.mountpoint, unix.MNT_DETACH); derr != nil {
		return fmt.Errorf("unmount %s: %v; lazy unmount: %w", s.mountpoint, err, derr)
	}
	s.fsys.log.Warn("mount busy, detached lazily: it goes away when the last open file is closed", "mountpoint", s.mountpoint, "err", err)
	return nil
}
