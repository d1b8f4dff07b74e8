// Wire framing: every message is one Cap'n Proto message whose root is a
// schema::Envelope carrying the protocol version, the body's type id and the
// body. Decode() is the one door for wire bytes (STYLE.md principle 3): it
// enforces explicit ReaderOptions limits and walks the whole body once, so no
// capnp exception can surface later in business code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <capnp/message.h>
#include <capnp/schema.h>
#include <capnp/serialize.h>
#include <kj/array.h>

#include "common/base/expected.h"
#include "schemas/common.capnp.h"

namespace manifold::wire {

/// The protocol this build speaks and the oldest one it accepts (common.capnp).
inline constexpr std::uint32_t kProtocolVersion = schema::PROTOCOL_VERSION;
inline constexpr std::uint32_t kMinProtocolVersion = schema::MIN_PROTOCOL_VERSION;

/// Largest message accepted; equal to the ZMQ_MAXMSGSIZE set by socket_options.
inline constexpr std::size_t kMaxMessageBytes = 16u << 20;

/// Limits applied to untrusted bytes. traversal_limit_words bounds the words
/// read in one full walk (pointer amplification included); nesting_limit bounds
/// pointer depth (capnp::ReaderOptions).
struct DecodeLimits {
  std::size_t max_message_bytes = kMaxMessageBytes;
  std::uint64_t traversal_limit_words = 4u << 20;  // 32 MiB: 2x the largest message
  int nesting_limit = 32;
};

/// Version and body type of a message, read without walking the body.
struct EnvelopeInfo {
  std::uint32_t protocol_version = 0;
  std::uint64_t body_type = 0;
};

/// Serialises a built message (any root) to flat bytes, one ZeroMQ frame.
std::string Encode(capnp::MessageBuilder& message);

/// A message to send: an Envelope stamped with kProtocolVersion and T's type id.
///   OutgoingMessage<schema::StageJob> out;
///   out.Body().setJobId("j1");
///   socket.send(zmq::buffer(out.Encode()));
template <class T>
class OutgoingMessage {
 public:
  OutgoingMessage() {
    auto envelope = message_.initRoot<schema::Envelope>();
    envelope.setProtocolVersion(kProtocolVersion);
    envelope.setBodyType(capnp::typeId<T>());
    envelope.getBody().template initAs<T>();
  }
  typename T::Builder Body() {
    return message_.getRoot<schema::Envelope>().getBody().template getAs<T>();
  }
  std::string Encode() { return wire::Encode(message_); }

 private:
  capnp::MallocMessageBuilder message_;
};

namespace internal {
/// Word-aligned copy of validated bytes plus the reader handed to callers.
class ValidatedMessage {
 public:
  ValidatedMessage(kj::Array<capnp::word> words, const capnp::ReaderOptions& options,
                   std::uint32_t version)
      : words_(std::move(words)), reader_(words_.asPtr(), options), version_(version) {}

  capnp::AnyPointer::Reader Body() { return reader_.getRoot<schema::Envelope>().getBody(); }
  std::uint32_t version() const { return version_; }

 private:
  kj::Array<capnp::word> words_;
  capnp::FlatArrayMessageReader reader_;  // points into words_
  std::uint32_t version_;
};

Expected<std::unique_ptr<ValidatedMessage>> DecodeValidated(std::string_view bytes,
                                                            const DecodeLimits& limits,
                                                            std::uint64_t body_type,
                                                            capnp::StructSchema body_schema);
}  // namespace internal

/// A validated incoming message. Owns its bytes; readers from Body() are valid
/// while this object lives. The reader behind Body() has its own budget of
/// limits.traversal_limit_words, which one full walk was proven to fit in.
template <class T>
class Decoded {
 public:
  typename T::Reader Body() const { return m_->Body().template getAs<T>(); }
  std::uint32_t protocol_version() const { return m_->version(); }

 private:
  template <class U>
  friend Expected<Decoded<U>> Decode(std::string_view, const DecodeLimits&);
  explicit Decoded(std::unique_ptr<internal::ValidatedMessage> m) : m_(std::move(m)) {}
  // Reading is logically const; capnp readers count traversal in the arena.
  std::unique_ptr<internal::ValidatedMessage> m_;
};

/// Reads the envelope only: size, framing and protocol version are checked,
/// the body is not. Lets a ROUTER pick the Decode<T> to call.
/// Errors: kInvalidInput ("wire.too_large", "wire.malformed", "wire.version").
Expected<EnvelopeInfo> PeekEnvelope(std::string_view bytes, const DecodeLimits& limits = {});

/// Decodes bytes holding an Envelope whose body is a T. Checks, in order: size,
/// framing, protocol version, limits over the whole message, body type, and a
/// schema-aware walk of the body.
/// Errors, all kInvalidInput: "wire.too_large", "wire.malformed",
/// "wire.version" ("peer speaks protocol N, this build speaks M"), "wire.limit"
/// (traversal or nesting limit exceeded), "wire.unexpected_type".
template <class T>
Expected<Decoded<T>> Decode(std::string_view bytes, const DecodeLimits& limits = {}) {
  MF_TRY(m, internal::DecodeValidated(bytes, limits, capnp::typeId<T>(),
                                      capnp::Schema::from<T>()));
  return Decoded<T>(std::move(m));
}

}  // namespace manifold::wire
