#include "common/layer/tar_writer.h"

#include <array>
#include <cstring>

namespace manifold::layer {
namespace {

constexpr std::size_t kBlockBytes = 512;
constexpr std::size_t kNameBytes = 100;
constexpr std::size_t kMaxPaxNameBytes = 100;

// ustar field offsets and widths (POSIX pax, "ustar Interchange Format").
struct Field {
  std::size_t offset;
  std::size_t width;
};
constexpr Field kName{0, 100};
constexpr Field kMode{100, 8};
constexpr Field kUid{108, 8};
constexpr Field kGid{116, 8};
constexpr Field kSize{124, 12};
constexpr Field kMtime{136, 12};
constexpr Field kChksum{148, 8};
constexpr std::size_t kTypeflag = 156;
constexpr Field kLinkname{157, 100};
constexpr Field kMagic{257, 6};
constexpr Field kVersion{263, 2};
constexpr Field kDevmajor{329, 8};
constexpr Field kDevminor{337, 8};

using Block = std::array<char, kBlockBytes>;

// A name for error text: bytes outside printable ASCII as \xNN.
std::string Printable(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '\\') {
      out += c;
    } else {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

Error BadHeader(const std::string& path, const std::string& why) {
  return MakeError(ErrorKind::kInvalidInput, "layer.tar.header",
                   "tar entry \"" + Printable(path) + "\": " + why);
}

// Whether `value` fits in a field of `width` bytes: width-1 octal digits + NUL.
bool FitsOctal(std::uint64_t value, std::size_t width) {
  std::size_t bits = 3 * (width - 1);
  return bits >= 64 || value < (std::uint64_t{1} << bits);
}

// Zero-padded octal, width-1 digits then NUL; 0 if the value does not fit
// (the pax record then carries it).
void PutOctal(Block& b, Field f, std::uint64_t value) {
  if (!FitsOctal(value, f.width)) value = 0;
  for (std::size_t i = f.width - 1; i-- > 0;) {
    b[f.offset + i] = static_cast<char>('0' + (value & 7));
    value >>= 3;
  }
  b[f.offset + f.width - 1] = '\0';
}

// Copies at most the field's width; the block is zeroed beforehand.
void PutString(Block& b, Field f, std::string_view s) {
  if (!s.empty()) std::memcpy(b.data() + f.offset, s.data(), std::min(s.size(), f.width));
}

char TypeFlag(EntryType type) {
  switch (type) {
    case EntryType::kRegular:
      return '0';
    case EntryType::kHardlink:
      return '1';
    case EntryType::kSymlink:
      return '2';
    case EntryType::kCharDevice:
      return '3';
    case EntryType::kBlockDevice:
      return '4';
    case EntryType::kDirectory:
      return '5';
    case EntryType::kFifo:
      return '6';
    case EntryType::kSocket:
      break;
  }
  MF_ASSERT(false, "socket entries are rejected before formatting");
  return 0;
}

struct UstarFields {
  std::string_view name;
  char typeflag = '0';
  std::uint32_t mode = 0;
  std::uint64_t uid = 0;
  std::uint64_t gid = 0;
  std::uint64_t size = 0;
  std::uint64_t mtime = 0;
  std::string_view linkname;
  std::uint32_t devmajor = 0;
  std::uint32_t devminor = 0;
};

Block FormatUstar(const UstarFields& u) {
  Block b{};
  PutString(b, kName, u.name);
  PutOctal(b, kMode, u.mode);
  PutOctal(b, kUid, u.uid);
  PutOctal(b, kGid, u.gid);
  PutOctal(b, kSize, u.size);
  PutOctal(b, kMtime, u.mtime);
  b[kTypeflag] = u.typeflag;
  PutString(b, kLinkname, u.linkname);
  PutString(b, kMagic, std::string_view("ustar\0", 6));
  PutString(b, kVersion, "00");
  PutOctal(b, kDevmajor, u.devmajor);
  PutOctal(b, kDevminor, u.devminor);
  // The checksum is computed with its own field read as spaces.
  std::memset(b.data() + kChksum.offset, ' ', kChksum.width);
  unsigned sum = 0;
  for (char c : b) sum += static_cast<unsigned char>(c);
  PutOctal(b, Field{kChksum.offset, 7}, sum);  // 6 digits + NUL, then the space
  return b;
}

// "<len> <key>=<value>\n" where <len> counts the whole record, itself included.
void AppendPaxRecord(std::string& out, std::string_view key, std::string_view value) {
  std::size_t payload = 1 + key.size() + 1 + value.size() + 1;
  std::size_t len = payload + std::to_string(payload).size();
  while (len != payload + std::to_string(len).size()) len = payload + std::to_string(len).size();
  out += std::to_string(len);
  out += ' ';
  out += key;
  out += '=';
  out += value;
  out += '\n';
}

// Structural UTF-8 check (lead byte + continuation bytes), enough to decide
// whether pax readers may convert the string or must take it as raw bytes.
bool IsValidUtf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t extra = c < 0x80             ? 0
                        : (c & 0xe0) == 0xc0 ? 1
                        : (c & 0xf0) == 0xe0 ? 2
                        : (c & 0xf8) == 0xf0 ? 3
                                             : 4;
    if (extra > 3 || s.size() - i <= extra) return false;
    for (std::size_t k = 1; k <= extra; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    }
    i += extra + 1;
  }
  return true;
}

// "PaxHeaders/<last component>", printable ASCII only, at most 100 bytes.
std::string PaxHeaderName(std::string_view path) {
  if (!path.empty() && path.back() == '/') path.remove_suffix(1);
  std::size_t slash = path.rfind('/');
  if (slash != std::string_view::npos) path.remove_prefix(slash + 1);
  std::string name = "PaxHeaders/";
  for (char c : path) name += (c >= 0x20 && c < 0x7f) ? c : '_';
  if (name.size() > kMaxPaxNameBytes) name.resize(kMaxPaxNameBytes);
  return name;
}

Expected<void> Validate(const TarHeader& h) {
  if (h.path.empty()) return BadHeader(h.path, "empty path");
  if (h.path.find('\0') != std::string::npos) return BadHeader(h.path, "NUL in path");
  if (h.linkname.find('\0') != std::string::npos) return BadHeader(h.path, "NUL in link name");
  if (h.type == EntryType::kSocket) return BadHeader(h.path, "sockets cannot be archived");
  if (h.type != EntryType::kRegular && h.size != 0) {
    return BadHeader(h.path, "only regular files carry data");
  }
  if (h.mode > 07777) return BadHeader(h.path, "mode has bits above 07777");
  if (h.uid < 0 || h.gid < 0) return BadHeader(h.path, "negative uid or gid");
  for (const auto& [name, value] : h.xattrs) {
    if (name.empty() || name.find_first_of(std::string_view("=\0", 2)) != std::string::npos) {
      return BadHeader(h.path,
                       "xattr name \"" + Printable(name) + "\" is empty or holds '=' or NUL");
    }
  }
  return Ok();
}

// Pax records for everything that does not fit the ustar fields; sorted by key.
std::map<std::string, std::string> PaxRecords(const TarHeader& h) {
  std::map<std::string, std::string> rec;
  bool binary = false;
  if (h.path.size() > kNameBytes) {
    rec["path"] = h.path;
    binary |= !IsValidUtf8(h.path);
  }
  if (h.linkname.size() > kNameBytes) {
    rec["linkpath"] = h.linkname;
    binary |= !IsValidUtf8(h.linkname);
  }
  if (binary) rec["hdrcharset"] = "BINARY";
  if (!FitsOctal(h.size, kSize.width)) rec["size"] = std::to_string(h.size);
  if (!FitsOctal(static_cast<std::uint64_t>(h.uid), kUid.width)) rec["uid"] = std::to_string(h.uid);
  if (!FitsOctal(static_cast<std::uint64_t>(h.gid), kGid.width)) rec["gid"] = std::to_string(h.gid);
  if (h.mtime < 0 || !FitsOctal(static_cast<std::uint64_t>(h.mtime), kMtime.width)) {
    rec["mtime"] = std::to_string(h.mtime);
  }
  if (!FitsOctal(h.devmajor, kDevmajor.width)) rec["SCHILY.devmajor"] = std::to_string(h.devmajor);
  if (!FitsOctal(h.devminor, kDevminor.width)) rec["SCHILY.devminor"] = std::to_string(h.devminor);
  for (const auto& [name, value] : h.xattrs) rec["SCHILY.xattr." + name] = value;
  return rec;
}

std::string_view Padding(std::uint64_t size) {
  static const Block kZero{};
  std::size_t rem = static_cast<std::size_t>(size % kBlockBytes);
  return rem == 0 ? std::string_view() : std::string_view(kZero.data(), kBlockBytes - rem);
}

std::string_view View(const Block& b) { return std::string_view(b.data(), b.size()); }

}  // namespace

Expected<void> TarWriter::Emit(std::string_view bytes) {
  MF_TRY_VOID(out_.Write(bytes));
  bytes_written_ += bytes.size();
  return Ok();
}

Expected<void> TarWriter::CheckEntryComplete() const {
  if (remaining_ == 0) return Ok();
  return MakeError(ErrorKind::kInternal, "layer.tar.short_data",
                   "tar entry \"" + Printable(current_path_) + "\" got " +
                       std::to_string(entry_size_ - remaining_) + " of " +
                       std::to_string(entry_size_) + " data bytes");
}

Expected<void> TarWriter::WriteHeader(const TarHeader& h) {
  MF_ASSERT(!finished_, "WriteHeader after Finish");
  MF_TRY_VOID(CheckEntryComplete());
  MF_TRY_VOID(Validate(h));

  auto records = PaxRecords(h);
  if (!records.empty()) {
    std::string pax;
    for (const auto& [key, value] : records) AppendPaxRecord(pax, key, value);
    std::string pax_name = PaxHeaderName(h.path);
    UstarFields x;
    x.name = pax_name;
    x.typeflag = 'x';
    x.mode = 0644;
    x.size = pax.size();
    MF_TRY_VOID(Emit(View(FormatUstar(x))));
    MF_TRY_VOID(Emit(pax));
    MF_TRY_VOID(Emit(Padding(pax.size())));
  }

  UstarFields u;
  u.name = h.path;
  u.typeflag = TypeFlag(h.type);
  u.mode = h.mode;
  u.uid = static_cast<std::uint64_t>(h.uid);
  u.gid = static_cast<std::uint64_t>(h.gid);
  u.size = h.size;
  u.mtime = h.mtime < 0 ? 0 : static_cast<std::uint64_t>(h.mtime);
  u.linkname = h.linkname;
  u.devmajor = h.devmajor;
  u.devminor = h.devminor;
  MF_TRY_VOID(Emit(View(FormatUstar(u))));

  current_path_ = h.path;
  entry_size_ = h.size;
  remaining_ = h.size;
  return Ok();
}

Expected<void> TarWriter::WriteData(std::string_view data) {
  MF_ASSERT(!finished_, "WriteData after Finish");
  if (data.size() > remaining_) {
    return MakeError(ErrorKind::kInternal, "layer.tar.excess_data",
                     "tar entry \"" + Printable(current_path_) + "\" is " +
                         std::to_string(entry_size_) + " bytes but more data was written");
  }
  if (data.empty()) return Ok();
  MF_TRY_VOID(Emit(data));
  remaining_ -= data.size();
  if (remaining_ == 0) MF_TRY_VOID(Emit(Padding(entry_size_)));
  return Ok();
}

Expected<void> TarWriter::Finish() {
  MF_ASSERT(!finished_, "Finish called twice");
  MF_TRY_VOID(CheckEntryComplete());
  finished_ = true;
  static const std::array<char, 2 * kBlockBytes> kEnd{};
  return Emit(std::string_view(kEnd.data(), kEnd.size()));
}

}  // namespace manifold::layer
