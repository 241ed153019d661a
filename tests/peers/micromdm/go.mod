// Only here so that GOPATH mode resolves micromdm's "/v2" import paths (Go's minimal module
// compatibility applies to code inside a tree with a go.mod). Built with GO111MODULE=off
// against Debian's /usr/share/gocode: nothing is fetched.
module certconn.invalid/tests/peers/micromdm

go 1.16
