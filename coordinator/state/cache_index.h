// The coordinator's shared cache index: cache key -> layer produced by that
// step, plus which workers hold each layer blob, in a SQLite database (WAL).
// The planner asks it whether a stage needs a job at all; the scheduler asks
// it which worker already holds a job's layers.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/base/expected.h"
#include "common/cache/step_cache.h"

struct sqlite3;
struct sqlite3_stmt;

namespace manifold::coordinator {

struct CacheRecord {
  std::string layer_digest;  ///< "sha256:..." of the compressed blob
  std::string diff_id;       ///< "sha256:..." of the uncompressed tar
  std::uint64_t size = 0;    ///< blob bytes

  bool operator==(const CacheRecord&) const = default;
};

/// Not thread-safe: owned by the coordinator's state thread. Every write is a
/// committed transaction when the call returns (synchronous=FULL).
/// Errors from every method: kResourceExhausted ("state.sqlite.full") when the
/// disk is full, kTransient ("state.sqlite.busy") when another process holds
/// the lock, kInternal ("state.sqlite") otherwise; kInvalidInput
/// ("state.cache.invalid") for empty keys, digests or worker ids.
class CacheIndex {
 public:
  /// Opens or creates the database at `path` and its schema.
  static Expected<std::unique_ptr<CacheIndex>> Open(const std::string& path);
  ~CacheIndex();
  CacheIndex(const CacheIndex&) = delete;
  CacheIndex& operator=(const CacheIndex&) = delete;

  /// Records what `key` produced, replacing an earlier record for the key.
  Expected<void> Put(std::string_view key, const CacheRecord& record);

  /// The record for `key`, or nullopt on a miss.
  Expected<std::optional<CacheRecord>> Get(std::string_view key);

  /// Notes that `worker_id` holds the blob `layer_digest` (idempotent).
  Expected<void> AddHolder(std::string_view layer_digest, std::string_view worker_id);

  /// Forgets a holder (worker lost or blob evicted); no error if absent.
  Expected<void> RemoveHolder(std::string_view layer_digest, std::string_view worker_id);

  /// Workers holding `layer_digest`, sorted by id.
  Expected<std::vector<std::string>> Holders(std::string_view layer_digest);
  /// How many workers hold it, and `limit` of them from the `skip`th on (by
  /// id): a farm's base layers have a holder per worker, and a job needs a
  /// few.
  Expected<std::size_t> HolderCount(std::string_view layer_digest);
  Expected<std::vector<std::string>> HoldersFrom(std::string_view layer_digest, std::size_t skip, std::size_t limit);
  /// Whether `worker_id` holds it.
  Expected<bool> Holds(std::string_view layer_digest, std::string_view worker_id);

  /// Step records of the shared cache (issue 6): what a step's key produced,
  /// as a worker's step cache holds it (config after the step, layer chain).
  Expected<void> PutStep(std::string_view key, const cache::StepRecord& record);
  /// nullopt on a miss (or an unreadable record: the cache is advisory).
  Expected<std::optional<cache::StepRecord>> GetStep(std::string_view key);

  /// What one finished job adds to the shared cache, in one transaction
  /// (one fsync, not one per row): each step record, and `worker_id` as a
  /// holder of every config and layer they name. Nothing is written on an
  /// error.
  Expected<void> PutStepsHeldBy(const std::vector<std::pair<std::string, cache::StepRecord>>& steps,
                                std::string_view worker_id);

  /// Forgets every blob `worker_id` held (revoked worker).
  Expected<void> RemoveWorker(std::string_view worker_id);

 private:
  struct DbClose {
    void operator()(sqlite3* db) const;
  };
  explicit CacheIndex(std::unique_ptr<sqlite3, DbClose> db);
  Expected<void> Exec(const char* sql);

 public:
  class Statement;

 private:
  /// The statement for `sql` (a literal: keyed by its address), prepared on
  /// first use and kept: preparing took as long as running the queries.
  Expected<Statement> Cached(const char* sql);

  std::unique_ptr<sqlite3, DbClose> db_;
  std::unordered_map<const char*, sqlite3_stmt*> cached_;
};

}  // namespace manifold::coordinator
