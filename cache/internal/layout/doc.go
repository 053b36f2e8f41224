// Package layout names the files of a cache directory and holds the file
// locks through which processes sharing it coordinate. The engine (package
// cache), its housekeeping (cache/gc) and the layer artifacts
// (cache/artifacts) each write their own part of the directory; this is
// where they agree on what every file is called, which files a live
// process holds, and what a file takes on disk.
//
// It must not know what the files hold or when they may go: a blob's
// lifecycle is the engine's, what is kept or evicted is gc's. Durable
// writes (fsync, rename) stay with the engine, whose tests control them.
package layout
