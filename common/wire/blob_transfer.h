// Blob transfer between nodes ("file transfer with credit", ZeroMQ guide
// ch. 7): the fetcher keeps up to `credit` BlobRequests of `chunk_bytes`
// outstanding; the server answers each with a BlobChunk header frame and one
// raw payload frame. Memory on both sides is bounded by credit x chunk, a
// layer is never one message, and the fetcher verifies the digest before the
// blob enters its store (DESIGN.md "Wire protocol").
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <zmq.hpp>

#include "common/base/expected.h"
#include "common/cas/blob_store.h"

namespace manifold::wire {

/// One answer of a blob server: the BlobChunk header and the payload frame
/// as it came off the socket (empty when none), never copied on the way to
/// the store.
struct ChunkAnswer {
  std::string header;
  zmq::message_t payload;
};

/// One side of a conversation with a blob server: sends a request frame,
/// receives answers. A DEALER socket, or a pipe through a reactor that owns
/// the real socket.
class ChunkChannel {
 public:
  virtual ~ChunkChannel() = default;
  virtual Expected<void> Send(const std::string& request) = 0;
  /// The next answer. Errors: kTransient "wire.blob.timeout" after
  /// `timeout` of silence.
  virtual Expected<ChunkAnswer> Receive(std::chrono::milliseconds timeout) = 0;
};

/// A connected DEALER socket as a channel (the caller owns the socket).
class DealerChannel : public ChunkChannel {
 public:
  explicit DealerChannel(zmq::socket_t& socket) : socket_(socket) {}
  Expected<void> Send(const std::string& request) override;
  Expected<ChunkAnswer> Receive(std::chrono::milliseconds timeout) override;

 private:
  zmq::socket_t& socket_;
};

struct FetchOptions {
  /// 256 KiB x 16 measured faster than 1 MiB x 8 and 4 MiB x 4 over
  /// loopback (bench/farm_bench.cc): chunks that stay in cache.
  std::uint32_t chunk_bytes = 256u << 10;
  unsigned credit = 16;
  std::chrono::milliseconds idle_timeout{30'000};
};

/// Fetches `digest` into `store` (verified by the store's writer). Answers
/// for other digests or offsets are ignored. Returns the bytes fetched.
/// Errors: the server's error (kInvalidInput "cas.not_found" when it lacks
/// the blob), kTransient "wire.blob.timeout", kIntegrity "cas.*" when the
/// bytes do not match, kInvalidInput "wire.blob" for a malformed answer.
Expected<std::uint64_t> FetchBlob(ChunkChannel& channel, const std::string& digest,
                                  cas::BlobStore& store, const FetchOptions& options = {});

/// Where a blob's bytes are on this node, or an error to send back.
using BlobPathFn = std::function<Expected<std::string>(const std::string& digest)>;

/// The answer to one BlobRequest: the header frame and, unless the header
/// carries an error, the payload frame, read from the file straight into
/// its message (the socket sends it without another copy). A malformed
/// request gets nothing (empty vector) and is logged.
std::vector<zmq::message_t> AnswerBlobRequest(std::string_view request, const BlobPathFn& path_of);

/// Sends `frames` as one multipart message, after `identity` when given
/// (a ROUTER's reply). Errors: kDisconnected "wire.blob.send".
Expected<void> SendFrames(zmq::socket_t& socket, std::vector<zmq::message_t>& frames,
                          zmq::message_t* identity = nullptr);

}  // namespace manifold::wire
