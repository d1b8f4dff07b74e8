// The on-disk CAS: a directory laid out as
//   <root>/blobs/sha256/<hex>   published blobs (read-only, 0444)
//   <root>/ingest/<random>      blobs being written; each flock()ed by its writer
//   <root>/quarantine/<hex>     blobs whose content failed verification
//   <root>/gc.lock              shared by writers, exclusive for garbage collection
// Writes go to a temp file in ingest/, are hashed while streaming, verified,
// fsynced and renamed into place, so a crash never leaves a blob whose content
// does not match its name (DESIGN.md "Data model", RELIABILITY.md F1-F3).
// Several processes may share one root.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "common/cas/blob_store.h"
#include "common/cas/posix_io.h"

namespace manifold::cas {

/// Held by garbage collection: while it lives no writer can start or commit.
class GcLock {
 public:
  explicit GcLock(internal::UniqueFd fd) : fd_(std::move(fd)) {}

 private:
  internal::UniqueFd fd_;
};

class LocalBlobStore : public BlobStore {
 public:
  struct Dirs;

  /// Creates the layout under `root` if missing, then removes ingest temp
  /// files left by crashed writers: files older than this Open() whose flock
  /// nobody holds. A live writer in another process holds its file's lock, so
  /// its temp survives (RELIABILITY.md F1).
  /// Errors: kInternal/kResourceExhausted ("cas.io").
  static Expected<std::unique_ptr<LocalBlobStore>> Open(const std::string& root);

  ~LocalBlobStore() override;

  Expected<bool> Has(std::string_view digest) const override;
  Expected<std::uint64_t> Stat(std::string_view digest) const override;
  /// The writer holds gc.lock shared from here until it is destroyed, so a
  /// committed blob cannot be collected before the caller, still holding the
  /// writer, has added it to a lease. Blocks while garbage collection runs.
  /// Concurrent ingests of one digest all succeed; one copy is kept (F2).
  Expected<std::unique_ptr<BlobWriter>> BeginIngest(
      std::optional<std::string> expected_digest = std::nullopt,
      std::optional<std::uint64_t> expected_size = std::nullopt) override;
  Expected<std::unique_ptr<BlobReader>> OpenBlob(std::string_view digest, bool verify) override;
  Expected<void> Delete(std::string_view digest) override;
  Expected<std::vector<std::string>> List() const override;

  /// Crash leftovers removed from ingest/ by Open().
  std::size_t swept_at_open() const { return swept_at_open_; }
  const std::string& root() const { return root_; }
  /// Where a held blob's bytes are (read-only; for servers that pread chunks).
  /// Errors: kInvalidInput "cas.digest_invalid".
  Expected<std::string> BlobPath(std::string_view digest) const;

  /// For gc.cc: takes gc.lock exclusively. With wait=false returns
  /// std::nullopt while any writer is alive instead of blocking.
  Expected<std::optional<GcLock>> LockForGc(bool wait);
  /// For gc.cc (call with the GcLock held): removes the blob if it was last
  /// modified before `cutoff`. Returns its size if removed, std::nullopt if it
  /// was missing or too young.
  Expected<std::optional<std::uint64_t>> DeleteIfOlder(
      std::string_view digest, std::chrono::system_clock::time_point cutoff);

 private:
  LocalBlobStore(std::string root, std::shared_ptr<const Dirs> dirs);
  Expected<void> SweepIngest();

  std::string root_;
  std::shared_ptr<const Dirs> dirs_;  ///< shared with writers and readers
  std::size_t swept_at_open_ = 0;
};

}  // namespace manifold::cas
