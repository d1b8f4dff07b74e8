#include "common/wire/codec.h"

#include <cstdio>
#include <cstring>

#include <capnp/dynamic.h>
#include <kj/exception.h>

namespace manifold::wire {
namespace {

Error InvalidInput(std::string code, std::string message) {
  return MakeError(ErrorKind::kInvalidInput, std::move(code), std::move(message));
}

std::string Hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

capnp::ReaderOptions ToReaderOptions(const DecodeLimits& limits) {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = limits.traversal_limit_words;
  options.nestingLimit = limits.nesting_limit;
  return options;
}

// Turns a capnp/kj exception raised while reading untrusted bytes into an Error.
// KJ descriptions read "expected <cond> [values]; <message>."; keep <message>.
Error FromKjException(const kj::Exception& e) {
  std::string what = e.getDescription().cStr();
  if (what.rfind("expected ", 0) == 0) {
    if (auto pos = what.find("]; "); pos != std::string::npos) what.erase(0, pos + 3);
  }
  while (!what.empty() && (what.back() == '.' || what.back() == ' ')) what.pop_back();
  if (what.find("traversal limit") != std::string::npos ||
      what.find("too deeply-nested") != std::string::npos) {
    return InvalidInput("wire.limit", "message exceeds decode limits: " + what);
  }
  return InvalidInput("wire.malformed", "malformed message: " + what);
}

// Copies the frame into word-aligned storage (ZeroMQ frames carry no alignment
// guarantee) after the checks that need no parsing.
Expected<kj::Array<capnp::word>> CopyToWords(std::string_view bytes, const DecodeLimits& limits) {
  if (bytes.size() > limits.max_message_bytes) {
    return InvalidInput("wire.too_large", "message is " + std::to_string(bytes.size()) +
                                              " bytes, limit is " +
                                              std::to_string(limits.max_message_bytes));
  }
  if (bytes.empty()) return InvalidInput("wire.malformed", "empty message");
  if (bytes.size() % sizeof(capnp::word) != 0) {
    return InvalidInput("wire.malformed", "message is " + std::to_string(bytes.size()) +
                                              " bytes, not a whole number of 8-byte words");
  }
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  return words;
}

Expected<void> CheckVersion(std::uint32_t peer) {
  if (peer >= kMinProtocolVersion && peer <= kProtocolVersion) return Ok();
  std::string msg = "peer speaks protocol " + std::to_string(peer) + ", this build speaks " +
                    std::to_string(kProtocolVersion);
  if (kMinProtocolVersion != kProtocolVersion) {
    msg += " (accepts " + std::to_string(kMinProtocolVersion) + " to " +
           std::to_string(kProtocolVersion) + ")";
  }
  return InvalidInput("wire.version", msg);
}

// Reads every field the schema knows about, so that pointer-kind mismatches,
// unterminated text and out-of-bounds lists fail here and not in a handler.
void WalkValue(const capnp::DynamicValue::Reader& value);

void WalkStruct(const capnp::DynamicStruct::Reader& s) {
  // Unset fields are skipped: an unset struct field reads as its default, so
  // walking it would recurse forever through a struct that contains itself.
  for (auto field : s.getSchema().getNonUnionFields())
    if (s.has(field)) WalkValue(s.get(field));
  KJ_IF_MAYBE(active, s.which()) {
    if (s.has(*active)) WalkValue(s.get(*active));
  }
}

void WalkValue(const capnp::DynamicValue::Reader& value) {
  switch (value.getType()) {
    case capnp::DynamicValue::STRUCT:
      WalkStruct(value.as<capnp::DynamicStruct>());
      break;
    case capnp::DynamicValue::LIST:
      for (auto element : value.as<capnp::DynamicList>()) WalkValue(element);
      break;
    default:
      // Scalars, enums, text and data were read (and checked) by get().
      // AnyPointer targets were bounds- and depth-checked by targetSize().
      break;
  }
}

}  // namespace

std::string Encode(capnp::MessageBuilder& message) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

Expected<EnvelopeInfo> PeekEnvelope(std::string_view bytes, const DecodeLimits& limits) {
  MF_TRY(words, CopyToWords(bytes, limits));
  EnvelopeInfo info;
  try {
    capnp::FlatArrayMessageReader reader(words.asPtr(), ToReaderOptions(limits));
    auto envelope = reader.getRoot<schema::Envelope>();
    info.protocol_version = envelope.getProtocolVersion();
    info.body_type = envelope.getBodyType();
  } catch (const kj::Exception& e) {
    return FromKjException(e);
  }
  MF_TRY_VOID(CheckVersion(info.protocol_version));
  return info;
}

namespace internal {

Expected<std::unique_ptr<ValidatedMessage>> DecodeValidated(std::string_view bytes,
                                                            const DecodeLimits& limits,
                                                            std::uint64_t body_type,
                                                            capnp::StructSchema body_schema) {
  MF_TRY(words, CopyToWords(bytes, limits));
  const capnp::ReaderOptions options = ToReaderOptions(limits);
  std::uint32_t version = 0;
  try {
    // Pass 1: the version first (an old peer must get "wrong version", not
    // "malformed"), then the size of everything reachable. targetSize() is
    // charged to the traversal limit and stops at the nesting limit, so
    // amplification and depth bombs end here, schema or no schema.
    capnp::FlatArrayMessageReader reader(words.asPtr(), options);
    auto root = reader.getRoot<capnp::AnyPointer>();
    auto envelope = root.getAs<schema::Envelope>();
    version = envelope.getProtocolVersion();
    MF_TRY_VOID(CheckVersion(version));
    if (root.targetSize().capCount != 0) {
      return InvalidInput("wire.malformed", "message carries capability pointers");
    }
    if (envelope.getBodyType() != body_type) {
      return InvalidInput("wire.unexpected_type",
                          "expected a " + std::string(body_schema.getShortDisplayName().cStr()) +
                              " message (" + Hex(body_type) + "), got type " +
                              Hex(envelope.getBodyType()));
    }
    // Pass 2, on a fresh budget: read every field through the schema.
    capnp::FlatArrayMessageReader typed(words.asPtr(), options);
    auto body = typed.getRoot<schema::Envelope>().getBody();
    WalkStruct(body.getAs<capnp::DynamicStruct>(body_schema));
  } catch (const kj::Exception& e) {
    return FromKjException(e);
  }
  // The reader kept for the caller gets its own, full budget.
  return std::make_unique<ValidatedMessage>(std::move(words), options, version);
}

}  // namespace internal
}  // namespace manifold::wire
