// Package archtest holds the test that keeps the package graph to the map
// in README.md's Architecture section. It has no code of its own.
package archtest
