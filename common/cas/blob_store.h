// The content-addressed blob store seam (STYLE.md section 6): blobs by digest,
// written through a verifying ingest and read back with optional re-hashing.
// LocalBlobStore (local_blob_store.h) is the real one; InMemoryBlobStore
// (testing/) is the fake. A blob becomes visible only after its bytes hashed
// to its name: nothing is ever published before its digest is verified.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/expected.h"

namespace manifold::cas {

/// Cap for ReadAll() of manifests, indexes and configs (RELIABILITY.md 3.3).
inline constexpr std::uint64_t kMaxDocumentBytes = 4 * 1024 * 1024;

/// Streams one blob's bytes. Same shape as layer::ByteSource. Single-threaded.
class BlobReader {
 public:
  virtual ~BlobReader() = default;
  /// Fills up to buffer.size() bytes; returns how many, 0 only at the end.
  /// A verifying reader checks the digest when it reaches the end: that Read
  /// fails with kIntegrity ("cas.corrupt") on mismatch, and so does every Read
  /// after it. A reader abandoned before the end has verified nothing.
  virtual Expected<std::size_t> Read(std::span<char> buffer) = 0;
  /// Size of the stored blob in bytes.
  virtual std::uint64_t size() const = 0;
};

/// Accepts one blob's bytes, hashing as they arrive. Same Write() shape as
/// layer::ByteSink. Single-threaded. Destroying an uncommitted writer aborts
/// it (the temporary bytes are removed, nothing is published).
class BlobWriter {
 public:
  virtual ~BlobWriter() = default;
  /// Consumes all of `data` or fails. Exceeding the expected size fails at
  /// once with kIntegrity ("cas.size_mismatch"). Any failure aborts the writer.
  virtual Expected<void> Write(std::string_view data) = 0;
  /// Verifies size, then digest, against the expectations given at
  /// BeginIngest and publishes the blob; returns its digest. If the blob
  /// already exists the new copy is discarded and Commit still succeeds.
  /// Errors: kIntegrity ("cas.size_mismatch", "cas.digest_mismatch"; nothing
  /// is published), kResourceExhausted/kInternal ("cas.io"), kInternal
  /// ("cas.writer_closed") after a previous Commit, Abort or failure.
  virtual Expected<std::string> Commit() = 0;
  /// Discards everything written. Idempotent; a no-op after Commit.
  virtual void Abort() = 0;
  virtual std::uint64_t bytes_written() const = 0;
};

/// Thread-safe: any number of threads may call any method at once. Readers
/// and writers it returns may outlive the store.
///
/// Every method taking a digest validates it first: kInvalidInput
/// ("cas.digest_invalid"). A digest the store does not hold gives
/// kInvalidInput ("cas.not_found") where a blob is required.
class BlobStore {
 public:
  virtual ~BlobStore() = default;

  virtual Expected<bool> Has(std::string_view digest) const = 0;
  /// Size in bytes.
  virtual Expected<std::uint64_t> Stat(std::string_view digest) const = 0;
  /// Starts writing a blob. When `expected_digest`/`expected_size` are given,
  /// Commit refuses any other content.
  virtual Expected<std::unique_ptr<BlobWriter>> BeginIngest(
      std::optional<std::string> expected_digest = std::nullopt,
      std::optional<std::uint64_t> expected_size = std::nullopt) = 0;
  /// Opens a blob for reading. With verify=true the content is re-hashed while
  /// it is read; a mismatch at the end is kIntegrity ("cas.corrupt") and the
  /// blob is moved out of the store into quarantine, so a re-fetch can
  /// replace it (RELIABILITY.md F3).
  virtual Expected<std::unique_ptr<BlobReader>> OpenBlob(std::string_view digest,
                                                         bool verify) = 0;
  /// Removes a blob. Removing a missing blob succeeds.
  virtual Expected<void> Delete(std::string_view digest) = 0;
  /// All digests held, sorted.
  virtual Expected<std::vector<std::string>> List() const = 0;

  /// Reads a small document (manifest, index, config) whole, verified.
  /// Errors: those of OpenBlob and Read, and kInvalidInput ("cas.too_large")
  /// when the blob is bigger than `max_bytes`.
  Expected<std::string> ReadAll(std::string_view digest,
                                std::uint64_t max_bytes = kMaxDocumentBytes);
};

/// Error helpers shared by the implementations, so both speak the same text.
Error NotFoundError(std::string_view digest);
Error SizeMismatchError(std::uint64_t expected, std::uint64_t actual, bool at_least);
Error DigestMismatchError(std::string_view expected, std::string_view actual);
Error CorruptError(std::string_view digest, std::string_view actual, std::string_view fate);
Error WriterClosedError();

}  // namespace manifold::cas
