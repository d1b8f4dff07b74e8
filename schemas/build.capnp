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

struct Output {
  union {
    none @0 :Void;
    ociArchive @1 :Text;
    # path on the client, written from streamed blobs
    ociDirectory @2 :Text;
    push @3 :Void;
    # push `tags` to their registries
  }
}

struct SubmitBuild {
  requestId @0 :Text;
  # chosen by the client; lets it match the reply and retry safely
  dockerfile @1 :Text;
  dockerfilePath @2 :Text;
  # as given by the user, for error messages
  target @3 :Text;
  # stage name; empty means the last stage
  platforms @4 :List(Common.Platform);
  buildArgs @5 :List(BuildArg);
  tags @6 :List(Text);
  context @7 :List(ContextEntry);
  output @8 :Output;
  noCache @9 :Bool;
  secretIds @10 :List(Text);
  # ids only; contents travel separately and never enter a message log
}

struct StepRef {
  jobId @0 :Text;
  stage @1 :Text;
  platform @2 :Common.Platform;
  index @3 :UInt32;
  total @4 :UInt32;
  description @5 :Text;
  # "RUN apk add curl"
}

enum LogStream {
  stdout @0;
  stderr @1;
}

struct BuildEvent {
  # Coordinator -> client, a stream per build. `sequence` increases by one per
  # event so a client can detect gaps after reconnecting.
  buildId @0 :Text;
  sequence @1 :UInt64;
  timeUnixMs @2 :UInt64;
  # for display only; never part of a cache key
  union {
    accepted @3 :Void;
    stepStarted @4 :StepRef;
    stepCached @5 :StepRef;
    log @6 :LogLine;
    stepDone @7 :StepDone;
    buildDone @8 :BuildDone;
    buildFailed @9 :Common.Error;
  }
}

struct LogLine {
  step @0 :StepRef;
  stream @1 :LogStream;
  data @2 :Data;
}

struct StepDone {
  step @0 :StepRef;
  durationMs @1 :UInt64;
}

struct BuildDone {
  indexDigest @0 :Common.Digest;
  # the OCI image index (manifest list) produced
  manifests @1 :List(Common.Descriptor);
  # one image manifest per platform
}
