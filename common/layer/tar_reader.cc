#include "common/layer/tar_reader.h"

#include <archive_entry.h>

#include <cerrno>
#include <cstring>

namespace manifold::layer {
namespace {

constexpr std::size_t kReadBufferBytes = 64 * 1024;

Error Malformed(std::string message) {
  return MakeError(ErrorKind::kInvalidInput, "layer.tar.malformed", std::move(message));
}

Error NameTooLong(const char* what, std::size_t size, std::size_t limit) {
  return MakeError(ErrorKind::kSecurity, "layer.limit.name",
                   std::string(what) + " is " + std::to_string(size) + " bytes, limit is " +
                       std::to_string(limit));
}

std::optional<EntryType> TypeOf(struct archive_entry* e) {
  if (archive_entry_hardlink(e) != nullptr) return EntryType::kHardlink;
  switch (archive_entry_filetype(e)) {
    case AE_IFREG: return EntryType::kRegular;
    case AE_IFDIR: return EntryType::kDirectory;
    case AE_IFLNK: return EntryType::kSymlink;
    case AE_IFCHR: return EntryType::kCharDevice;
    case AE_IFBLK: return EntryType::kBlockDevice;
    case AE_IFIFO: return EntryType::kFifo;
    case AE_IFSOCK: return EntryType::kSocket;
    default: return std::nullopt;
  }
}

// libarchive messages about extension headers past its own caps (1 MiB per
// header, 1 MB per pax record, 32 headers in a row).
bool IsPaxLimitMessage(const char* detail) {
  return std::strstr(detail, "Special header too large") != nullptr ||
         std::strstr(detail, "Too many special headers") != nullptr ||
         std::strstr(detail, "Rejecting pax extended attribute") != nullptr;
}

// Warnings after which libarchive silently dropped the rest of a pax header
// (a "path" record among them, possibly): a parser differential we refuse.
bool IsMalformedPaxMessage(const char* detail) {
  return std::strstr(detail, "malformed pax extended attribute") != nullptr ||
         std::strstr(detail, "Invalid pax extended attributes") != nullptr;
}

Error PaxTooLarge(std::string message) {
  return MakeError(ErrorKind::kSecurity, "layer.limit.pax", std::move(message));
}

// Raw bytes as stored; falls back to the UTF-8 form libarchive may keep for
// pax names it could not convert to the C locale.
const char* PathOf(struct archive_entry* e) {
  const char* p = archive_entry_pathname(e);
  return p != nullptr ? p : archive_entry_pathname_utf8(e);
}

}  // namespace

void TarReader::ArchiveFree::operator()(struct archive* a) const { archive_read_free(a); }

TarReader::TarReader(ByteSource& source, const TarLimits& limits)
    : source_(source), limits_(limits), archive_(archive_read_new()), buffer_(kReadBufferBytes) {}

TarReader::~TarReader() = default;

Expected<std::unique_ptr<TarReader>> TarReader::Open(ByteSource& source, const TarLimits& limits) {
  std::unique_ptr<TarReader> reader(new TarReader(source, limits));
  struct archive* a = reader->archive_.get();
  if (a == nullptr) {
    return MakeError(ErrorKind::kInternal, "layer.tar.open", "archive_read_new failed");
  }
  // Tar only (ustar, pax, GNU); decompression is ours (compress.h), with limits.
  // "empty" accepts a zero-byte layer.
  if (archive_read_support_format_tar(a) != ARCHIVE_OK ||
      archive_read_support_format_empty(a) != ARCHIVE_OK) {
    return MakeError(ErrorKind::kInternal, "layer.tar.open", archive_error_string(a));
  }
  if (archive_read_open(a, reader.get(), nullptr, &TarReader::ReadCallback, nullptr) !=
      ARCHIVE_OK) {
    return reader->ArchiveError("opening tar stream");
  }
  return reader;
}

la_ssize_t TarReader::ReadCallback(struct archive* a, void* self, const void** buffer) {
  auto* reader = static_cast<TarReader*>(self);
  auto n = reader->source_.Read(std::span<char>(reader->buffer_));
  if (!n.ok()) {
    reader->source_error_ = std::move(n).error();
    archive_set_error(a, EIO, "reading layer stream failed");
    return -1;
  }
  *buffer = reader->buffer_.data();
  return static_cast<la_ssize_t>(*n);
}

Error TarReader::ArchiveError(const char* what) {
  if (source_error_) return *source_error_;
  const char* detail = archive_error_string(archive_.get());
  return Malformed(std::string(what) + ": " + (detail != nullptr ? detail : "unknown error"));
}

Expected<std::optional<TarEntry>> TarReader::Next() {
  struct archive_entry* e = nullptr;
  int rc = archive_read_next_header(archive_.get(), &e);
  if (rc == ARCHIVE_EOF) return std::optional<TarEntry>();
  // ARCHIVE_WARN (e.g. a name it could not convert to the locale) still
  // yields a usable header; ARCHIVE_RETRY (a damaged header, skipped) and
  // anything worse do not.
  if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
    const char* detail = archive_error_string(archive_.get());
    if (!source_error_ && detail != nullptr && IsPaxLimitMessage(detail)) {
      return PaxTooLarge(std::string("extended header refused: ") + detail);
    }
    return ArchiveError("reading tar header");
  }
  if (rc == ARCHIVE_WARN) {
    const char* detail = archive_error_string(archive_.get());
    if (detail != nullptr && IsPaxLimitMessage(detail)) {
      return PaxTooLarge(std::string("extended header refused: ") + detail);
    }
    if (detail != nullptr && IsMalformedPaxMessage(detail)) {
      return Malformed(std::string("reading tar header: ") + detail);
    }
  }
  // The whole header sequence of this entry: extension headers + its own block.
  std::uint64_t header_bytes = consumed_bytes() - static_cast<std::uint64_t>(
                                                      archive_read_header_position(archive_.get()));
  constexpr std::uint64_t kBlock = 512;
  if (header_bytes > kBlock + limits_.max_pax_bytes) {
    return PaxTooLarge("entry has " + std::to_string(header_bytes - kBlock) +
                       " bytes of extended headers, limit is " +
                       std::to_string(limits_.max_pax_bytes));
  }

  if (++entries_ > limits_.max_entries) {
    return MakeError(ErrorKind::kSecurity, "layer.limit.entries",
                     "layer has more than " + std::to_string(limits_.max_entries) + " entries");
  }
  const char* path = PathOf(e);
  if (path == nullptr || *path == '\0') return Malformed("tar entry without a name");
  TarEntry entry;
  entry.path = path;
  if (entry.path.size() > limits_.max_name_bytes) {
    return NameTooLong("entry name", entry.path.size(), limits_.max_name_bytes);
  }
  auto type = TypeOf(e);
  if (!type) return Malformed("tar entry \"" + entry.path + "\" has an unknown type");
  entry.type = *type;
  const char* link = entry.type == EntryType::kHardlink ? archive_entry_hardlink(e)
                     : entry.type == EntryType::kSymlink ? archive_entry_symlink(e)
                                                         : nullptr;
  if (link != nullptr) entry.linkname = link;
  if (entry.linkname.size() > limits_.max_name_bytes) {
    return NameTooLong("link target", entry.linkname.size(), limits_.max_name_bytes);
  }
  entry.size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
  if (entry.size < 0) return Malformed("tar entry \"" + entry.path + "\" has a negative size");
  entry.mode = static_cast<std::uint32_t>(archive_entry_mode(e)) & 07777;
  entry.uid = archive_entry_uid(e);
  entry.gid = archive_entry_gid(e);
  entry.mtime = archive_entry_mtime(e);
  entry.mtime_nsec = static_cast<std::int32_t>(archive_entry_mtime_nsec(e));
  if (archive_entry_atime_is_set(e)) {
    entry.atime = TarTime{archive_entry_atime(e),
                          static_cast<std::int32_t>(archive_entry_atime_nsec(e))};
  }
  if (entry.type == EntryType::kCharDevice || entry.type == EntryType::kBlockDevice) {
    entry.devmajor = static_cast<std::uint64_t>(archive_entry_rdevmajor(e));
    entry.devminor = static_cast<std::uint64_t>(archive_entry_rdevminor(e));
  }
  entry.header_bytes = header_bytes;
  archive_entry_xattr_reset(e);
  const char* xattr_name = nullptr;
  const void* xattr_value = nullptr;
  std::size_t xattr_size = 0;
  while (archive_entry_xattr_next(e, &xattr_name, &xattr_value, &xattr_size) == ARCHIVE_OK) {
    if (xattr_name == nullptr) continue;
    entry.xattrs[xattr_name] = xattr_size == 0 ? std::string()
                                               : std::string(static_cast<const char*>(xattr_value),
                                                             xattr_size);
  }
  return std::optional<TarEntry>(std::move(entry));
}

std::uint64_t TarReader::consumed_bytes() const {
  return static_cast<std::uint64_t>(archive_filter_bytes(archive_.get(), 0));
}

Expected<std::size_t> TarReader::ReadData(std::span<char> buffer) {
  la_ssize_t n = archive_read_data(archive_.get(), buffer.data(), buffer.size());
  if (n < 0) return ArchiveError("reading tar entry data");
  return static_cast<std::size_t>(n);
}

}  // namespace manifold::layer
