// Writing side of tar layers: our own streaming POSIX ustar + pax writer,
// deterministic byte for byte. The same sequence of headers and data always
// gives the same bytes, whatever the host, the time or the caller's chunking:
//
// - ustar header, magic "ustar\0" version "00"; uname/gname empty (numeric
//   owners only); no atime/ctime; prefix field unused.
// - Numeric fields are zero-padded octal of fixed width ending in NUL (mode,
//   uid, gid, devmajor, devminor: 7 digits; size, mtime: 11 digits); the
//   checksum is 6 octal digits, NUL, space.
// - A pax extended header ('x') precedes an entry exactly when a value does
//   not fit its ustar field: path or linkname longer than 100 bytes
//   ("path", "linkpath"), size >= 8 GiB ("size"), uid/gid > 07777777 ("uid",
//   "gid"), mtime negative or >= 8^11 ("mtime", integer seconds),
//   devmajor/devminor > 07777777 ("SCHILY.devmajor", "SCHILY.devminor"), and
//   for every xattr ("SCHILY.xattr.<name>", raw value bytes). Records are
//   sorted by key (byte order), so xattrs come out sorted by name. A
//   too-large ustar number is written as 0; a too-long ustar name or linkname
//   holds the first 100 bytes. Non-ASCII names are stored as raw bytes; a pax
//   path or linkpath that is not valid UTF-8 adds "hdrcharset=BINARY".
// - The pax header's own entry is named "PaxHeaders/<base>", where <base> is
//   the entry's last path component (a trailing "/" dropped), with bytes
//   outside printable ASCII replaced by '_', and the whole name cut to its
//   first 100 bytes. It has mode 0644, uid/gid 0, mtime 0.
// - Finish() writes two zero blocks and nothing else (no padding to a 10 KiB
//   record as GNU tar does).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/base/expected.h"
#include "common/layer/byte_stream.h"
#include "common/layer/tar_reader.h"  // EntryType

namespace manifold::layer {

struct TarHeader {
  std::string path;                      ///< relative, no "./"; directories end in "/"
  EntryType type = EntryType::kRegular;  ///< kSocket is rejected
  std::uint32_t mode = 0;                ///< permission bits incl. setuid/setgid/sticky (07777)
  std::int64_t uid = 0;
  std::int64_t gid = 0;
  std::int64_t mtime = 0;      ///< whole seconds since the epoch
  std::uint64_t size = 0;      ///< data bytes that follow; regular files only
  std::string linkname;        ///< symlink target or hardlink source
  std::uint32_t devmajor = 0;  ///< char and block devices
  std::uint32_t devminor = 0;
  std::map<std::string, std::string> xattrs;  ///< name -> raw value
};

/// Streams a tar archive into a sink. Call WriteHeader(), then WriteData()
/// until exactly `size` bytes are given, repeat, then Finish() once.
/// Not thread-safe. `out` must outlive the writer.
class TarWriter {
 public:
  explicit TarWriter(ByteSink& out) : out_(out) {}
  TarWriter(const TarWriter&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;

  /// Starts an entry (pax header first when needed, see above).
  /// Errors: kInvalidInput ("layer.tar.header": empty path, NUL in a name,
  /// socket type, data size on a non-regular entry, mode above 07777,
  /// negative uid/gid, xattr name empty or holding '=' or NUL),
  /// kInternal ("layer.tar.short_data": the previous entry lacks data),
  /// or the sink's errors.
  Expected<void> WriteHeader(const TarHeader& header);

  /// Appends data to the current entry; pads to 512 bytes once it is complete.
  /// Errors: kInternal ("layer.tar.excess_data": more than the header's size),
  /// or the sink's errors.
  Expected<void> WriteData(std::string_view data);

  /// Ends the archive with two zero blocks.
  /// Errors: kInternal ("layer.tar.short_data"), or the sink's errors.
  Expected<void> Finish();

  /// Bytes handed to the sink so far.
  std::uint64_t bytes_written() const { return bytes_written_; }

 private:
  Expected<void> Emit(std::string_view bytes);
  Expected<void> CheckEntryComplete() const;

  ByteSink& out_;
  std::uint64_t remaining_ = 0;  // data bytes still owed to the current entry
  std::uint64_t entry_size_ = 0;
  std::uint64_t bytes_written_ = 0;
  std::string current_path_;
  bool finished_ = false;
};

}  // namespace manifold::layer
