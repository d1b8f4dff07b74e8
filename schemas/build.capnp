@0xc18aafdc60a7f0c3;
# Client (CLI) <-> coordinator. Each travels as the body of a common.capnp
# Envelope. Append-only: never renumber; add at the end.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("manifold::schema");

using Common = import "common.capnp";

struct BuildArg {
  name @0 :Text;
  value @1 :Text;
}

struct ContextEntry {
  # One file of the build context after .dockerignore.
  path @0 :Text;
  # relative, '/'-separated
  mode @1 :UInt32;
  uid @2 :UInt32;
  gid @3 :UInt32;
  size @4 :UInt64;
  digest @5 :Common.Digest;
  # regular files only
  linkTarget @6 :Text;
  # symlinks only
}








