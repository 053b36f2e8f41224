package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// A background mount's password travels from the parent to the child
// through a pipe, never on the child's command line or in its environment:
// both are readable by every local user in /proc. The environment only
// names the pipe's descriptor.
const (
	passwordFDEnv = "IMGFS_PASSWORD_FD"
	passwordFD    = 4
)

// maxPasswordSize bounds what is read as a password, from standard input
// or the pipe.
const maxPasswordSize = 64 << 10

// credentials returns the user name and password that --user and
// --password-stdin give, reading the password from stdin when it is not on
// the command line. A background child reads it from the pipe its parent
// left at passwordFD instead. An empty user means no credentials were
// given; the registry client then looks in the docker config.
func (r *registryFlags) credentials(stdin io.Reader) (user, password string, err error) {
	name, pass, hasPass := strings.Cut(r.user, ":")
	switch {
	case r.user == "" && r.passwordStdin:
		return "", "", usageError{errors.New("--password-stdin needs --user <name>")}
	case r.user == "":
		return "", "", nil
	case name == "":
		return "", "", usageError{fmt.Errorf("--user: want user[:password], got an empty user name")}
	case hasPass && r.passwordStdin:
		return "", "", usageError{errors.New("--user has a password and --password-stdin asks for one: give only one")}
	case hasPass:
		return name, pass, nil
	}
	if fd := os.Getenv(passwordFDEnv); fd != "" && isBackgroundChild() {
		pass, err := readPasswordPipe(fd)
		return name, pass, err
	}
	if stdin == nil {
		return "", "", fmt.Errorf("--user %s: no password given and no standard input to read it from", name)
	}
	pass, err = readPasswordLine(stdin)
	if err != nil {
		return "", "", fmt.Errorf("--user %s: reading the password from standard input: %w", name, err)
	}
	return name, pass, nil
}

// readPasswordLine reads one line from r, without its line ending.
func readPasswordLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, maxPasswordSize)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password there (pipe one in, e.g. echo \"$PASSWORD\" | imgfs ...)")
	}
	return line, nil
}

// readPasswordPipe reads the password a background parent wrote to the
// descriptor fd, then forgets the descriptor so that nothing this process
// starts inherits it.
func readPasswordPipe(fd string) (string, error) {
	os.Unsetenv(passwordFDEnv)
	n, err := strconv.Atoi(fd)
	if err != nil || n != passwordFD {
		return "", fmt.Errorf("%s=%q: not the password pipe", passwordFDEnv, fd)
	}
	f := os.NewFile(uintptr(n), "password")
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPasswordSize))
	if err != nil {
		return "", fmt.Errorf("read the password from the parent: %w", err)
	}
	return string(b), nil
}
