// Reading side of tar layers: a thin libarchive wrapper that iterates entries
// from a ByteSource with limits on entry count and name length. It reports
// paths exactly as stored; deciding whether a path or link is safe is the
// job of layer::Apply through fs::RootDir, which re-checks at use.
#pragma once

#include <archive.h>

#include <cstdint>
#include <map>
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

struct TarTime {
  std::int64_t sec = 0;
  std::int32_t nsec = 0;
};

struct TarEntry {
  std::string path;      ///< as stored (may contain "..", be absolute, etc.)
  EntryType type = EntryType::kRegular;
  std::int64_t size = 0;  ///< data bytes that follow (0 for links and dirs)
  std::uint32_t mode = 0; ///< permission bits incl. setuid/setgid/sticky (07777)
  std::int64_t uid = 0;
  std::int64_t gid = 0;
  std::string linkname;  ///< symlink target or hardlink source; empty otherwise
  std::int64_t mtime = 0;       ///< seconds since the epoch
  std::int32_t mtime_nsec = 0;  ///< sub-second part of mtime (pax only; else 0)
  std::optional<TarTime> atime; ///< only when the archive stores one (pax)
  /// Char and block devices only; 0 otherwise. As stored, not range-checked:
  /// values beyond what the kernel's dev_t can hold are the caller's to refuse.
  std::uint64_t devmajor = 0;
  std::uint64_t devminor = 0;
  std::map<std::string, std::string> xattrs;  ///< name -> raw value (pax SCHILY.xattr.*)
  /// Bytes of header blocks before the data, pax and GNU extension headers included.
  std::uint64_t header_bytes = 0;
};

struct TarLimits {
  std::uint64_t max_entries = 1'000'000;
  std::size_t max_name_bytes = 4096;  ///< applies to path and linkname (PATH_MAX)
  /// Extension headers (pax 'x'/'g', GNU 'L'/'K') before one entry. libarchive
  /// itself refuses any one such header over 1 MiB and more than 32 in a row;
  /// that refusal is reported under the same code.
  std::size_t max_pax_bytes = 1 << 20;
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
  /// Errors: kSecurity ("layer.limit.entries", "layer.limit.name",
  /// "layer.limit.pax"), kInvalidInput ("layer.tar.malformed", also for pax
  /// records libarchive would skip as malformed), or the source's errors.
  Expected<std::optional<TarEntry>> Next();

  /// Reads the current entry's data; 0 at its end.
  /// Errors: kInvalidInput ("layer.tar.malformed") or the source's errors.
  Expected<std::size_t> ReadData(std::span<char> buffer);

  /// Bytes of the stream the tar format has consumed so far. After Next()
  /// returned the end, this is the offset just past the end-of-archive
  /// blocks: whatever follows is trailing data, not read by this reader.
  std::uint64_t consumed_bytes() const;

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
