// ADD's archive detection (Docker's DetectCompression + "is the first tar
// header readable"), and a decompressing ByteSource for the formats
// layer::Apply does not sniff itself (bzip2, xz), via libarchive's raw reader
// with only those filters enabled.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "common/base/expected.h"
#include "common/layer/byte_stream.h"

namespace manifold::worker {

enum class ArchiveCompression { kNone, kGzip, kBzip2, kXz, kZstd };

/// Docker's magic-byte sniffing: gzip 1f 8b 08, bzip2 "BZh", xz fd 37 7a 58 5a 00,
/// zstd 28 b5 2f fd; anything else kNone.
ArchiveCompression DetectArchiveCompression(std::string_view head);

/// A source of the decompressed bytes of `in` (which must outlive it): gzip
/// and zstd through layer's decompressors, bzip2 and xz through libarchive,
/// kNone passes through. Corrupt input fails with kIntegrity "step.add.corrupt".
Expected<std::unique_ptr<layer::ByteSource>> NewArchiveDecompressor(ArchiveCompression c,
                                                                    layer::ByteSource& in);

}  // namespace manifold::worker
