// The layer pipeline: directory tree -> tar -> compressor -> sink, hashing
// the tar (diff_id) and the compressed bytes (digest) as they stream past.
// Nothing holds a whole layer in memory: each stage keeps a fixed buffer.
//
//   WriteTree -> TarWriter -> HashingSink(diff_id) -> Compressor
//             -> HashingSink(digest) -> out
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/base/expected.h"
#include "common/crypto/sha256.h"
#include "common/layer/byte_stream.h"
#include "common/layer/compress.h"
#include "common/layer/diff.h"

namespace manifold::layer {

/// The OCI layer media type for a compression.
std::string_view LayerMediaType(Compression compression);

/// Hashes and counts the bytes written, then passes them on to `next`
/// (if not null). Used for digests and by tests as a store-nothing sink.
class HashingSink : public ByteSink {
 public:
  explicit HashingSink(ByteSink* next = nullptr) : next_(next) {}
  Expected<void> Write(std::string_view data) override;

  std::uint64_t bytes() const { return bytes_; }
  /// "sha256:<hex>" of everything written; finishes the hash (call once).
  std::string Digest() { return "sha256:" + sha_.HexDigest(); }

 private:
  ByteSink* next_;
  crypto::Sha256 sha_;
  std::uint64_t bytes_ = 0;
};

struct LayerInfo {
  std::string digest;                   ///< "sha256:<hex>" of the bytes written to `out`
  std::string diff_id;                  ///< "sha256:<hex>" of the uncompressed tar
  std::uint64_t size = 0;               ///< bytes written to `out`
  std::uint64_t uncompressed_size = 0;  ///< tar bytes
  std::string media_type;
  DiffStats stats;
};

/// Archives the tree under `dir_fd` (see diff.h) into `out`, compressed.
/// Errors: those of WriteTree, NewCompressor and `out`.
Expected<LayerInfo> WriteLayer(int dir_fd, ByteSink& out, Compression compression,
                               const DiffOptions& options,
                               const CompressOptions& compress_options = {});

/// Same, opening `dir_path` (trusted, from the worker).
Expected<LayerInfo> WriteLayer(const std::string& dir_path, ByteSink& out, Compression compression,
                               const DiffOptions& options,
                               const CompressOptions& compress_options = {});

}  // namespace manifold::layer
