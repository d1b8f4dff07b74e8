#include "common/cas/blob_store.h"

#include <vector>

namespace manifold::cas {

Expected<std::string> BlobStore::ReadAll(std::string_view digest, std::uint64_t max_bytes) {
  MF_TRY(reader, OpenBlob(digest, /*verify=*/true));
  auto too_large = [&](std::uint64_t size) {
    return MakeError(ErrorKind::kInvalidInput, "cas.too_large",
                     "blob " + std::string(digest) + " is " + std::to_string(size) +
                         " bytes, over the " + std::to_string(max_bytes) + "-byte limit");
  };
  if (reader->size() > max_bytes) return too_large(reader->size());
  std::string out;
  out.reserve(reader->size());
  std::vector<char> buffer(64 * 1024);
  for (;;) {
    MF_TRY(n, reader->Read(buffer));
    if (n == 0) return out;
    // Blobs are immutable, but the limit must hold whatever the file does.
    if (out.size() + n > max_bytes) return too_large(out.size() + n);
    out.append(buffer.data(), n);
  }
}

Error NotFoundError(std::string_view digest) {
  return MakeError(ErrorKind::kInvalidInput, "cas.not_found",
                   "blob " + std::string(digest) + " not found");
}

Error SizeMismatchError(std::uint64_t expected, std::uint64_t actual, bool at_least) {
  return MakeError(ErrorKind::kIntegrity, "cas.size_mismatch",
                   "blob size mismatch: expected " + std::to_string(expected) + " bytes, got " +
                       (at_least ? "at least " : "") + std::to_string(actual));
}

Error DigestMismatchError(std::string_view expected, std::string_view actual) {
  return MakeError(ErrorKind::kIntegrity, "cas.digest_mismatch",
                   "blob digest mismatch: expected " + std::string(expected) + ", got " +
                       std::string(actual));
}

Error CorruptError(std::string_view digest, std::string_view actual, std::string_view fate) {
  return MakeError(ErrorKind::kIntegrity, "cas.corrupt",
                   "blob " + std::string(digest) + " is corrupt: its content hashes to " +
                       std::string(actual) + "; " + std::string(fate));
}

Error WriterClosedError() {
  return MakeError(ErrorKind::kInternal, "cas.writer_closed",
                   "blob writer used after commit, abort or failure");
}

}  // namespace manifold::cas
