// What a step's cache key produced, on a node's disk: the image config after
// the step (in the content store) and the stage's full layer chain up to it.
// A hit on a stage's last key answers the whole stage; a hit on an earlier key
// lets a worker resume after it (DESIGN.md "A build, end to end", 2 and 4).
//
//   <state>/cache/steps/<key hex>.json   one record, replaced atomically
//
// Records only point at content-store blobs: when `manifold prune` removed
// them, Get still returns the record and the caller must check the blobs
// (Builder and the stage executor treat a record with a missing blob as a miss).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/base/expected.h"

namespace manifold::cache {

struct CachedLayer {
  std::string media_type;
  std::string digest;   ///< compressed blob
  std::string diff_id;  ///< uncompressed tar
  std::uint64_t size = 0;
  bool operator==(const CachedLayer&) const = default;
};

struct StepRecord {
  std::string config_digest;        ///< "sha256:..." of the image config after the step
  std::vector<CachedLayer> layers;  ///< full chain, base first
  bool operator==(const StepRecord&) const = default;
};

class StepCache {
 public:
  /// Opens (creating) <state_dir>/cache/steps. Errors: kInternal "cache.io".
  static Expected<StepCache> Open(const std::string& state_dir);

  /// The record for `key` ("sha256:<hex>"), nullopt on a miss. A record that
  /// does not parse is treated as a miss (and logged): the cache is advisory.
  /// Errors: kInvalidInput "cache.key" for a malformed key.
  Expected<std::optional<StepRecord>> Get(const std::string& key) const;

  /// Stores `record` under `key` (write to a temp file, fsync, rename).
  /// Errors: kInvalidInput "cache.key"; kInternal "cache.io".
  Expected<void> Put(const std::string& key, const StepRecord& record) const;

  const std::string& dir() const { return dir_; }

 private:
  explicit StepCache(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

}  // namespace manifold::cache
