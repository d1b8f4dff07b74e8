#include "common/layer/byte_stream.h"

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

}  // namespace manifold::layer
