// Streaming layer compression with bounded memory: gzip through ISA-L igzip,
// zstd through libzstd, and passthrough for uncompressed layers. Output is
// reproducible: the gzip header has no name and no mtime, and input is fed to
// the codec in fixed-size blocks whatever the caller's write sizes.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "common/base/expected.h"
#include "common/layer/byte_stream.h"

namespace manifold::layer {

enum class Compression { kNone, kGzip, kZstd };

/// "none", "gzip", "zstd".
const char* CompressionName(Compression c);

/// Sniffs magic bytes (gzip 1f 8b, zstd 28 b5 2f fd); anything else is kNone.
Compression DetectCompression(std::string_view head);

struct CompressOptions {
  int gzip_level = 3;  ///< ISA-L level, 0..3 (3: the best ratio, still >10x zlib -6 speed)
  int zstd_level = 3;  ///< libzstd level
};

/// A sink compressing into another sink. Finish() must be called once after
/// the last Write(); before it the output is incomplete.
class Compressor : public ByteSink {
 public:
  virtual Expected<void> Finish() = 0;
};

/// Errors: kInvalidInput ("layer.compress.level"). Writes may fail with the
/// sink's errors or kInternal ("layer.compress.failed").
Expected<std::unique_ptr<Compressor>> NewCompressor(Compression compression, ByteSink& out,
                                                    const CompressOptions& options = {});

struct DecompressLimits {
  /// Decompressed bytes allowed before failing with kSecurity "layer.limit.size".
  std::uint64_t max_output_bytes = UINT64_MAX;
};

/// A source yielding decompressed bytes. Reads fail with kIntegrity
/// ("layer.gzip.corrupt", "layer.gzip.truncated", "layer.zstd.corrupt",
/// "layer.zstd.truncated"), kSecurity ("layer.limit.size"), or the input's errors.
class Decompressor : public ByteSource {
 public:
  virtual Compression compression() const = 0;
};

/// Decompresses `in` (which must outlive the result) as `compression`.
std::unique_ptr<Decompressor> NewDecompressor(Compression compression, ByteSource& in,
                                              const DecompressLimits& limits = {});

/// Reads the first bytes of `in` and picks the format from their magic.
/// Errors: those of `in`.
Expected<std::unique_ptr<Decompressor>> NewAutoDecompressor(ByteSource& in,
                                                            const DecompressLimits& limits = {});

}  // namespace manifold::layer
