// Reading side of tar layers: a thin libarchive wrapper that iterates entries
// from a ByteSource with limits on entry count and name length. It reports
// paths exactly as stored; deciding whether a path or link is safe is the
// job of layer::Apply through fs::RootDir, which re-checks at use.
#pragma once

#include <archive.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/base/expected.h"
#include "common/layer/byte_stream.h"

namespace manifold::layer {

enum class EntryType {
  kRegular,
  kDirectory,
  kSymlink,
  kHardlink,
  kCharDevice,
  kBlockDevice,
  kFifo,
  kSocket,
};

struct TarEntry {
  std::string path;      ///< as stored (may contain "..", be absolute, etc.)
  EntryType type = EntryType::kRegular;
  std::int64_t size = 0;  ///< data bytes that follow (0 for links and dirs)
  std::uint32_t mode = 0; ///< permission bits incl. setuid/setgid/sticky (07777)
  std::int64_t uid = 0;
  std::int64_t gid = 0;
  std::string linkname;  ///< symlink target or hardlink source; empty otherwise
};

struct TarLimits {
  std::uint64_t max_entries = 1'000'000;
  std::size_t max_name_bytes = 4096;  ///< applies to path and linkname (PATH_MAX)
};

/// Iterates a tar stream. Not thread-safe; not movable (libarchive keeps a
/// pointer to it). `source` must outlive the reader.
class TarReader {
 public:
  /// Reads the first block to recognise the format.
  /// Errors: kInvalidInput ("layer.tar.malformed"), the source's errors, or
  /// kInternal ("layer.tar.open") if libarchive cannot be set up.
  static Expected<std::unique_ptr<TarReader>> Open(ByteSource& source,
                                                   const TarLimits& limits = {});
  ~TarReader();
  TarReader(const TarReader&) = delete;
  TarReader& operator=(const TarReader&) = delete;

  /// The next entry's header, or nullopt at the end of the archive. Unread
  /// data of the previous entry is skipped.
  /// Errors: kSecurity ("layer.limit.entries", "layer.limit.name"),
  /// kInvalidInput ("layer.tar.malformed"), or the source's errors.
  Expected<std::optional<TarEntry>> Next();

  /// Reads the current entry's data; 0 at its end.
  /// Errors: kInvalidInput ("layer.tar.malformed") or the source's errors.
  Expected<std::size_t> ReadData(std::span<char> buffer);

 private:
  TarReader(ByteSource& source, const TarLimits& limits);
  static la_ssize_t ReadCallback(struct archive* a, void* self, const void** buffer);
  Error ArchiveError(const char* what);

  struct ArchiveFree {
    void operator()(struct archive* a) const;
  };
  ByteSource& source_;
  TarLimits limits_;
  std::unique_ptr<struct archive, ArchiveFree> archive_;
  std::vector<char> buffer_;
  std::optional<Error> source_error_;  // kept so the caller sees the real cause
  std::uint64_t entries_ = 0;
};

}  // namespace manifold::layer
