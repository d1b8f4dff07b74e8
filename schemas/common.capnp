@0xf2299d9cb932abac;
# Types shared by every Manifold protocol.
# Append-only: never renumber or retype a field; add new fields at the end.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("manifold::schema");

const protocolVersion :UInt32 = 1;
# The protocol this build speaks. Bump it when a change is not wire-compatible.

const minProtocolVersion :UInt32 = 1;
# The oldest peer protocol this build still accepts.

struct Envelope {
  # The root of every message on the wire. Its first two fields are frozen
  # forever so that any two versions can at least tell each other apart.
  protocolVersion @0 :UInt32;
  bodyType @1 :UInt64;
  # Cap'n Proto type id of the struct held in `body` (e.g. StageJob's id).
  body @2 :AnyPointer;
}

struct Digest {
  # "sha256:<64 hex>" split in its two parts.
  algorithm @0 :Text;
  # "sha256"
  encoded @1 :Text;
  # lowercase hex
}

struct Platform {
  os @0 :Text;
  architecture @1 :Text;
  variant @2 :Text;
  # empty when the architecture has none ("v7" for linux/arm/v7)
}

struct Annotation {
  key @0 :Text;
  value @1 :Text;
}

struct Descriptor {
  # An OCI content descriptor.
  mediaType @0 :Text;
  digest @1 :Digest;
  size @2 :UInt64;
  annotations @3 :List(Annotation);
}

enum ErrorKind {
  # Mirrors manifold::ErrorKind (common/base/error.h), same order.
  invalidInput @0;
  integrity @1;
  security @2;
  transient @3;
  disconnected @4;
  resourceExhausted @5;
  unimplemented @6;
  internal @7;
}

struct SourceRange {
  file @0 :Text;
  line @1 :UInt32;
  column @2 :UInt32;
  endLine @3 :UInt32;
}

struct Error {
  # manifold::Error on the wire. Retry decisions read only `kind`.
  kind @0 :ErrorKind;
  code @1 :Text;
  message @2 :Text;
  context @3 :List(Text);
  # outermost last
  where @4 :SourceRange;
  # unset when unknown
  detail @5 :Text;
}
