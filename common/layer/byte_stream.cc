#include "common/layer/byte_stream.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <vector>

namespace manifold::layer {

Expected<void> StringSink::Write(std::string_view data) {
  data_.append(data);
  return Ok();
}

Expected<std::size_t> StringSource::Read(std::span<char> buffer) {
  std::size_t n = std::min({buffer.size(), data_.size(), max_chunk_});
  std::copy_n(data_.data(), n, buffer.data());
  data_.remove_prefix(n);
  return n;
}

Expected<std::uint64_t> CopyStream(ByteSource& from, ByteSink& to) {
  std::vector<char> buffer(64 * 1024);
  std::uint64_t total = 0;
  for (;;) {
    MF_TRY(n, from.Read(buffer));
    if (n == 0) return total;
    MF_TRY_VOID(to.Write(std::string_view(buffer.data(), n)));
    total += n;
  }
}

Expected<void> FdSink::Write(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      return MakeError(e == ENOSPC || e == EDQUOT ? ErrorKind::kResourceExhausted : ErrorKind::kInvalidInput,
                       "io.write", std::string("write: ") + std::strerror(e));
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return Ok();
}

Expected<std::size_t> FdSource::Read(std::span<char> buffer) {
  for (;;) {
    ssize_t n = ::read(fd_, buffer.data(), buffer.size());
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno != EINTR)
      return MakeError(ErrorKind::kInvalidInput, "io.read", std::string("read: ") + std::strerror(errno));
  }
}

}  // namespace manifold::layer
