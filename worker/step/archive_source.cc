#include "worker/step/archive_source.h"

#include <archive.h>

#include <cstring>
#include <vector>

#include "common/layer/compress.h"

namespace manifold::worker {
namespace {

class Passthrough : public layer::ByteSource {
 public:
  explicit Passthrough(layer::ByteSource& in) : in_(in) {}
  Expected<std::size_t> Read(std::span<char> buffer) override { return in_.Read(buffer); }

 private:
  layer::ByteSource& in_;
};

// libarchive raw format: yields the filtered (decompressed) stream as one entry.
class LibarchiveSource : public layer::ByteSource {
 public:
  LibarchiveSource(layer::ByteSource& in) : in_(in), buffer_(64 * 1024) {}
  ~LibarchiveSource() override {
    if (a_) archive_read_free(a_);
  }

  Expected<void> Open(ArchiveCompression c) {
    a_ = archive_read_new();
    if (!a_) return MakeError(ErrorKind::kInternal, "step.add.archive", "archive_read_new failed");
    int r = c == ArchiveCompression::kBzip2 ? archive_read_support_filter_bzip2(a_)
                                            : archive_read_support_filter_xz(a_);
    // ARCHIVE_WARN: an external program would be used; refuse that.
    if (r != ARCHIVE_OK)
      return MakeError(ErrorKind::kUnimplemented, "step.add.compression",
                       "libarchive lacks built-in support for this compression");
    archive_read_support_format_raw(a_);
    if (archive_read_open(a_, this, nullptr, &LibarchiveSource::Callback, nullptr) != ARCHIVE_OK)
      return Fail();
    struct archive_entry* entry = nullptr;
    if (archive_read_next_header(a_, &entry) != ARCHIVE_OK) return Fail();
    return Ok();
  }

  Expected<std::size_t> Read(std::span<char> buffer) override {
    la_ssize_t n = archive_read_data(a_, buffer.data(), buffer.size());
    if (n < 0) return Fail();
    return static_cast<std::size_t>(n);
  }

 private:
  static la_ssize_t Callback(struct archive*, void* self_ptr, const void** out) {
    auto* self = static_cast<LibarchiveSource*>(self_ptr);
    auto n = self->in_.Read(std::span<char>(self->buffer_.data(), self->buffer_.size()));
    if (!n.ok()) {
      self->source_error_ = n.error();
      return -1;
    }
    *out = self->buffer_.data();
    return static_cast<la_ssize_t>(*n);
  }
  Error Fail() {
    if (source_error_) return *source_error_;
    const char* msg = archive_error_string(a_);
    return MakeError(ErrorKind::kIntegrity, "step.add.corrupt",
                     std::string("corrupt compressed archive: ") + (msg ? msg : "unknown error"));
  }

  layer::ByteSource& in_;
  std::vector<char> buffer_;
  struct archive* a_ = nullptr;
  std::optional<Error> source_error_;
};

}  // namespace

ArchiveCompression DetectArchiveCompression(std::string_view head) {
  auto starts = [&](std::string_view magic) {
    return head.size() >= magic.size() && head.substr(0, magic.size()) == magic;
  };
  if (starts(std::string_view("\x1f\x8b\x08", 3))) return ArchiveCompression::kGzip;
  if (starts("BZh")) return ArchiveCompression::kBzip2;
  if (starts(std::string_view("\xfd\x37\x7a\x58\x5a\x00", 6))) return ArchiveCompression::kXz;
  if (starts(std::string_view("\x28\xb5\x2f\xfd", 4))) return ArchiveCompression::kZstd;
  return ArchiveCompression::kNone;
}

Expected<std::unique_ptr<layer::ByteSource>> NewArchiveDecompressor(ArchiveCompression c,
                                                                    layer::ByteSource& in) {
  switch (c) {
    case ArchiveCompression::kNone:
      return std::unique_ptr<layer::ByteSource>(new Passthrough(in));
    case ArchiveCompression::kGzip:
      return std::unique_ptr<layer::ByteSource>(
          layer::NewDecompressor(layer::Compression::kGzip, in));
    case ArchiveCompression::kZstd:
      return std::unique_ptr<layer::ByteSource>(
          layer::NewDecompressor(layer::Compression::kZstd, in));
    case ArchiveCompression::kBzip2:
    case ArchiveCompression::kXz: {
      auto src = std::make_unique<LibarchiveSource>(in);
      MF_TRY_VOID(src->Open(c));
      return std::unique_ptr<layer::ByteSource>(std::move(src));
    }
  }
  return MakeError(ErrorKind::kInternal, "step.add.compression", "unknown compression");
}

}  // namespace manifold::worker
