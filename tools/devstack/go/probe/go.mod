// A tiny static HTTP server and client for the single-node tests' pods: the standard library
// only, so it builds without downloading anything.
module claimflow.local/probe

go 1.22
