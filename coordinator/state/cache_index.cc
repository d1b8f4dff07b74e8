#include "coordinator/state/cache_index.h"

#include <sqlite3.h>

#include <nlohmann/json.hpp>

namespace manifold::coordinator {
namespace {

constexpr int kBusyTimeoutMs = 5000;
constexpr int kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS cache_records (
  cache_key    TEXT PRIMARY KEY NOT NULL,
  layer_digest TEXT NOT NULL,
  diff_id      TEXT NOT NULL,
  size         INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS step_records (
  cache_key     TEXT PRIMARY KEY NOT NULL,
  config_digest TEXT NOT NULL,
  layers        TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blob_holders (
  layer_digest TEXT NOT NULL,
  worker_id    TEXT NOT NULL,
  PRIMARY KEY (layer_digest, worker_id)
) WITHOUT ROWID;
)sql";

Error SqliteError(sqlite3* db, int rc, const std::string& what) {
  std::string detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xff) {  // primary result code
    case SQLITE_FULL:
      return MakeError(ErrorKind::kResourceExhausted, "state.sqlite.full", what + ": " + detail);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return MakeError(ErrorKind::kTransient, "state.sqlite.busy", what + ": " + detail);
    default:
      return MakeError(ErrorKind::kInternal, "state.sqlite", what + ": " + detail);
  }
}

Expected<void> RequireNonEmpty(std::string_view value, const char* name) {
  if (!value.empty()) return Ok();
  return MakeError(ErrorKind::kInvalidInput, "state.cache.invalid", std::string(name) + " is empty");
}

}  // namespace

// One prepared statement: finalized on scope exit, or (one the index keeps,
// see CacheIndex::Cached) reset for its next use.
class CacheIndex::Statement {
 public:
  static Expected<Statement> Prepare(sqlite3* db, const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
    if (rc != SQLITE_OK) return SqliteError(db, rc, "preparing statement");
    return Statement(db, stmt, true);
  }
  static Statement Borrow(sqlite3* db, sqlite3_stmt* stmt) { return Statement(db, stmt, false); }
  Statement(Statement&& other) noexcept : db_(other.db_), stmt_(other.stmt_), owned_(other.owned_) {
    other.stmt_ = nullptr;
  }
  Statement& operator=(Statement&&) = delete;
  ~Statement() {
    if (stmt_ == nullptr) return;
    if (owned_) {
      sqlite3_finalize(stmt_);
    } else {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }

  Statement& Bind(int index, std::string_view text) {
    // SQLITE_TRANSIENT: sqlite copies, so the view need not outlive the step.
    sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& Bind(int index, std::int64_t value) {
    sqlite3_bind_int64(stmt_, index, value);
    return *this;
  }
  /// true while a row is available, false when done.
  Expected<bool> Step(const char* what) {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteError(db_, rc, what);
  }
  std::string Text(int column) const {
    const auto* p = sqlite3_column_text(stmt_, column);
    return p != nullptr ? std::string(reinterpret_cast<const char*>(p),
                                      static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)))
                        : std::string();
  }
  std::int64_t Int64(int column) const { return sqlite3_column_int64(stmt_, column); }

 private:
  Statement(sqlite3* db, sqlite3_stmt* stmt, bool owned) : db_(db), stmt_(stmt), owned_(owned) {}
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  bool owned_;
};

namespace {
using Statement = CacheIndex::Statement;
}  // namespace

void CacheIndex::DbClose::operator()(sqlite3* db) const { sqlite3_close_v2(db); }

CacheIndex::CacheIndex(std::unique_ptr<sqlite3, DbClose> db) : db_(std::move(db)) {}
CacheIndex::~CacheIndex() {
  for (auto& [sql, stmt] : cached_) sqlite3_finalize(stmt);
}

Expected<CacheIndex::Statement> CacheIndex::Cached(const char* sql) {
  auto it = cached_.find(sql);
  if (it == cached_.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return SqliteError(db_.get(), rc, "preparing statement");
    it = cached_.emplace(sql, stmt).first;
  }
  return Statement::Borrow(db_.get(), it->second);
}

Expected<void> CacheIndex::Exec(const char* sql) {
  char* message = nullptr;
  int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, &message);
  sqlite3_free(message);  // the same text is available from sqlite3_errmsg
  if (rc != SQLITE_OK) return SqliteError(db_.get(), rc, "executing schema");
  return Ok();
}

Expected<std::unique_ptr<CacheIndex>> CacheIndex::Open(const std::string& path) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  std::unique_ptr<sqlite3, DbClose> db(raw);  // sqlite allocates a handle even on failure
  if (rc != SQLITE_OK) return SqliteError(db.get(), rc, "opening " + path);
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  sqlite3_extended_result_codes(db.get(), 1);
  std::unique_ptr<CacheIndex> index(new CacheIndex(std::move(db)));

  // WAL: readers (status page) never block the writer; FULL: a Put that
  // returned survives power loss, which the shared index promises workers.
  MF_TRY(mode, Statement::Prepare(index->db_.get(), "PRAGMA journal_mode=WAL"));
  MF_TRY(has_row, mode.Step("enabling WAL"));
  if (!has_row || mode.Text(0) != "wal") {
    return MakeError(ErrorKind::kInternal, "state.sqlite",
                     "could not enable WAL journal on " + path);
  }
  MF_TRY_VOID(index->Exec("PRAGMA synchronous=FULL"));
  MF_TRY(version, Statement::Prepare(index->db_.get(), "PRAGMA user_version"));
  MF_TRY_VOID(version.Step("reading schema version"));
  if (version.Int64(0) > kSchemaVersion) {
    return MakeError(ErrorKind::kUnimplemented, "state.schema",
                     path + " has schema version " + std::to_string(version.Int64(0)) +
                         ", newer than this build's " + std::to_string(kSchemaVersion));
  }
  MF_TRY_VOID(index->Exec(kSchema));
  MF_TRY_VOID(index->Exec(("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str()));
  return index;
}

Expected<void> CacheIndex::Put(std::string_view key, const CacheRecord& record) {
  MF_TRY_VOID(RequireNonEmpty(key, "cache key"));
  MF_TRY_VOID(RequireNonEmpty(record.layer_digest, "layer digest"));
  MF_TRY_VOID(RequireNonEmpty(record.diff_id, "diff_id"));
  MF_TRY(stmt, Cached("INSERT INTO cache_records (cache_key, layer_digest, diff_id, size) "
                                  "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (cache_key) DO UPDATE SET "
                                  "layer_digest = excluded.layer_digest, "
                                  "diff_id = excluded.diff_id, size = excluded.size"));
  stmt.Bind(1, key).Bind(2, record.layer_digest).Bind(3, record.diff_id);
  stmt.Bind(4, static_cast<std::int64_t>(record.size));
  MF_TRY_VOID(stmt.Step("storing cache record"));
  return Ok();
}

Expected<std::optional<CacheRecord>> CacheIndex::Get(std::string_view key) {
  MF_TRY(stmt, Cached("SELECT layer_digest, diff_id, size FROM cache_records "
                                  "WHERE cache_key = ?1"));
  stmt.Bind(1, key);
  MF_TRY(has_row, stmt.Step("reading cache record"));
  if (!has_row) return std::optional<CacheRecord>();
  CacheRecord record;
  record.layer_digest = stmt.Text(0);
  record.diff_id = stmt.Text(1);
  record.size = static_cast<std::uint64_t>(stmt.Int64(2));
  return std::optional<CacheRecord>(std::move(record));
}

Expected<void> CacheIndex::AddHolder(std::string_view layer_digest, std::string_view worker_id) {
  MF_TRY_VOID(RequireNonEmpty(layer_digest, "layer digest"));
  MF_TRY_VOID(RequireNonEmpty(worker_id, "worker id"));
  MF_TRY(stmt, Cached("INSERT OR IGNORE INTO blob_holders (layer_digest, worker_id) "
                                  "VALUES (?1, ?2)"));
  stmt.Bind(1, layer_digest).Bind(2, worker_id);
  MF_TRY_VOID(stmt.Step("adding holder"));
  return Ok();
}

Expected<void> CacheIndex::RemoveHolder(std::string_view layer_digest,
                                        std::string_view worker_id) {
  MF_TRY(stmt, Cached("DELETE FROM blob_holders WHERE layer_digest = ?1 "
                                  "AND worker_id = ?2"));
  stmt.Bind(1, layer_digest).Bind(2, worker_id);
  MF_TRY_VOID(stmt.Step("removing holder"));
  return Ok();
}

Expected<std::size_t> CacheIndex::HolderCount(std::string_view layer_digest) {
  MF_TRY(stmt, Cached("SELECT COUNT(*) FROM blob_holders WHERE layer_digest = ?1"));
  stmt.Bind(1, layer_digest);
  MF_TRY(has_row, stmt.Step("counting holders"));
  return has_row ? static_cast<std::size_t>(stmt.Int64(0)) : 0;
}

Expected<std::vector<std::string>> CacheIndex::HoldersFrom(std::string_view layer_digest, std::size_t skip,
                                                           std::size_t limit) {
  MF_TRY(stmt, Cached("SELECT worker_id FROM blob_holders WHERE layer_digest = ?1 "
                      "ORDER BY worker_id LIMIT ?2 OFFSET ?3"));
  stmt.Bind(1, layer_digest).Bind(2, static_cast<std::int64_t>(limit)).Bind(3, static_cast<std::int64_t>(skip));
  std::vector<std::string> holders;
  for (;;) {
    MF_TRY(has_row, stmt.Step("listing holders"));
    if (!has_row) return holders;
    holders.push_back(stmt.Text(0));
  }
}

Expected<bool> CacheIndex::Holds(std::string_view layer_digest, std::string_view worker_id) {
  MF_TRY(stmt, Cached("SELECT 1 FROM blob_holders WHERE layer_digest = ?1 AND worker_id = ?2"));
  stmt.Bind(1, layer_digest).Bind(2, worker_id);
  return stmt.Step("looking up a holder");
}

Expected<std::vector<std::string>> CacheIndex::Holders(std::string_view layer_digest) {
  MF_TRY(stmt, Cached("SELECT worker_id FROM blob_holders WHERE layer_digest = ?1 "
                                  "ORDER BY worker_id"));
  stmt.Bind(1, layer_digest);
  std::vector<std::string> holders;
  for (;;) {
    MF_TRY(has_row, stmt.Step("listing holders"));
    if (!has_row) return holders;
    holders.push_back(stmt.Text(0));
  }
}

Expected<void> CacheIndex::PutStep(std::string_view key, const cache::StepRecord& record) {
  MF_TRY_VOID(RequireNonEmpty(key, "cache key"));
  MF_TRY_VOID(RequireNonEmpty(record.config_digest, "config digest"));
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : record.layers)
    layers.push_back({{"mediaType", l.media_type}, {"digest", l.digest}, {"diffID", l.diff_id},
                      {"size", l.size}});
  MF_TRY(stmt, Cached("INSERT INTO step_records (cache_key, config_digest, layers) "
                                  "VALUES (?1, ?2, ?3) ON CONFLICT (cache_key) DO UPDATE SET "
                                  "config_digest = excluded.config_digest, layers = excluded.layers"));
  std::string text = layers.dump();
  stmt.Bind(1, key).Bind(2, record.config_digest).Bind(3, text);
  MF_TRY_VOID(stmt.Step("storing step record"));
  return Ok();
}

Expected<void> CacheIndex::PutStepsHeldBy(const std::vector<std::pair<std::string, cache::StepRecord>>& steps,
                                          std::string_view worker_id) {
  MF_TRY_VOID(RequireNonEmpty(worker_id, "worker id"));
  MF_TRY_VOID(Exec("BEGIN IMMEDIATE"));
  auto body = [&]() -> Expected<void> {
    for (const auto& [key, record] : steps) {
      MF_TRY_VOID(PutStep(key, record));
      MF_TRY_VOID(AddHolder(record.config_digest, worker_id));
      for (const auto& l : record.layers) MF_TRY_VOID(AddHolder(l.digest, worker_id));
    }
    return Ok();
  };
  if (auto done = body(); !done.ok()) {
    (void)Exec("ROLLBACK");
    return done;
  }
  return Exec("COMMIT");
}

Expected<std::optional<cache::StepRecord>> CacheIndex::GetStep(std::string_view key) {
  MF_TRY(stmt, Cached("SELECT config_digest, layers FROM step_records WHERE cache_key = ?1"));
  stmt.Bind(1, key);
  MF_TRY(has_row, stmt.Step("reading step record"));
  if (!has_row) return std::optional<cache::StepRecord>();
  cache::StepRecord rec;
  rec.config_digest = stmt.Text(0);
  auto layers = nlohmann::json::parse(stmt.Text(1), nullptr, false);
  if (!layers.is_array()) return std::optional<cache::StepRecord>();  // advisory: a miss
  for (const auto& l : layers) {
    if (!l.is_object() || !l.contains("digest")) return std::optional<cache::StepRecord>();
    rec.layers.push_back({l.value("mediaType", ""), l.value("digest", ""), l.value("diffID", ""),
                          l.value("size", std::uint64_t{0})});
  }
  return std::optional<cache::StepRecord>(std::move(rec));
}

Expected<void> CacheIndex::RemoveWorker(std::string_view worker_id) {
  MF_TRY(stmt, Cached("DELETE FROM blob_holders WHERE worker_id = ?1"));
  stmt.Bind(1, worker_id);
  MF_TRY_VOID(stmt.Step("forgetting a worker's blobs"));
  return Ok();
}

}  // namespace manifold::coordinator
