// Package hosts reads containerd's registry host configuration: a
// directory of <host>/hosts.toml files (certs.d), as containerd's
// core/remotes/docker/config reads it. For a registry it yields the
// ordered hosts to try (mirrors first, the server last), each with its
// capabilities, TLS settings, extra headers and API root.
//
// It validates everything it reads, and says which file and key is wrong
// in one line. It sends no requests: package fetch does that.
package hosts
