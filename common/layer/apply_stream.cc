#include "common/layer/apply_stream.h"

#include <algorithm>
#include <string_view>

namespace manifold::layer::internal {
namespace {

// libarchive reads ahead at most a few 64 KiB chunks past what it consumed.
constexpr std::size_t kTailBytes = 512 * 1024;
constexpr std::uint64_t kBlock = 512;

Error Truncated(std::string message) {
  return MakeError(ErrorKind::kIntegrity, "layer.truncated", std::move(message));
}

bool AllZero(std::string_view bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == '\0'; });
}

}  // namespace

Expected<std::size_t> TarStream::Read(std::span<char> buffer) {
  MF_TRY(n, in_.Read(buffer));
  total_ += n;
  if (total_ > max_bytes_) {
    return MakeError(ErrorKind::kSecurity, "layer.limit.bytes",
                     "layer exceeds " + std::to_string(max_bytes_) + " uncompressed bytes");
  }
  std::string_view got(buffer.data(), n);
  sha_.Update(got);
  tail_.append(got);
  if (tail_.size() > 2 * kTailBytes) tail_.erase(0, tail_.size() - kTailBytes);
  return n;
}

Expected<void> TarStream::CheckEnd(std::uint64_t tar_end) {
  const std::uint64_t tail_start = total_ - tail_.size();
  if (tar_end > total_ || (tar_end > 0 && tar_end - std::min(tar_end, kBlock) < tail_start)) {
    return MakeError(ErrorKind::kInternal, "layer.internal",
                     "tar reader position " + std::to_string(tar_end) +
                         " is outside the retained stream tail");
  }
  if (tar_end > 0) {
    std::uint64_t marker = tar_end - std::min(tar_end, kBlock);
    if (!AllZero(std::string_view(tail_).substr(marker - tail_start, tar_end - marker))) {
      return Truncated("tar stream ends without an end-of-archive marker");
    }
  }
  if (!AllZero(std::string_view(tail_).substr(tar_end - tail_start))) {
    return Truncated("non-zero bytes after the end-of-archive marker");
  }
  std::string buffer(64 * 1024, '\0');
  for (;;) {
    MF_TRY(n, Read(std::span<char>(buffer.data(), buffer.size())));
    if (n == 0) return Ok();
    if (!AllZero(std::string_view(buffer.data(), n))) {
      return Truncated("non-zero bytes after the end-of-archive marker");
    }
  }
}

std::string TarStream::DiffId() { return "sha256:" + sha_.HexDigest(); }

}  // namespace manifold::layer::internal
