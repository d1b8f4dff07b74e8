// The uncompressed tar stream as layer::Apply sees it: every byte is counted
// against the layer limit, hashed into the diff_id, and the last bytes are
// kept so the end of the archive can be checked after libarchive stops.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "common/base/expected.h"
#include "common/crypto/sha256.h"
#include "common/layer/byte_stream.h"

namespace manifold::layer::internal {

class TarStream : public ByteSource {
 public:
  /// `in` yields uncompressed bytes and must outlive this.
  TarStream(ByteSource& in, std::uint64_t max_bytes) : in_(in), max_bytes_(max_bytes) {}

  /// Errors: kSecurity "layer.limit.bytes", or those of `in`.
  Expected<std::size_t> Read(std::span<char> buffer) override;

  /// Bytes read so far.
  std::uint64_t total() const { return total_; }
  std::uint64_t max_bytes() const { return max_bytes_; }

  /// After the tar reader reached its end having consumed `tar_end` bytes:
  /// requires the block before it to be zero (the end-of-archive marker) and
  /// every byte after it, to the end of the stream, to be zero (padding).
  /// Errors: kIntegrity "layer.truncated", kSecurity "layer.limit.bytes".
  Expected<void> CheckEnd(std::uint64_t tar_end);

  /// "sha256:<hex>" of everything read. Call once, after CheckEnd().
  std::string DiffId();

 private:
  ByteSource& in_;
  std::uint64_t max_bytes_;
  std::uint64_t total_ = 0;
  crypto::Sha256 sha_;
  std::string tail_;  // the last bytes read; tail_[0] is at offset total_ - tail_.size()
};

}  // namespace manifold::layer::internal
