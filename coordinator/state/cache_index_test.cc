#include "coordinator/state/cache_index.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace manifold::coordinator {
namespace {

class CacheIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "cache_index_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = (dir_ / "index.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<CacheIndex> OpenIndex() {
    auto index = CacheIndex::Open(path_);
    EXPECT_TRUE(index.ok()) << index.error().ToString();
    return index.ok() ? std::move(*index) : nullptr;
  }

  std::filesystem::path dir_;
  std::string path_;
};

const CacheRecord kRecord{"sha256:" + std::string(64, 'a'), "sha256:" + std::string(64, 'b'), 4096};

TEST_F(CacheIndexTest, PutThenGet) {
  auto index = OpenIndex();
  ASSERT_TRUE(index->Put("key-1", kRecord).ok());
  auto hit = index->Get("key-1");
  ASSERT_TRUE(hit.ok()) << hit.error().ToString();
  ASSERT_TRUE(hit->has_value());
  EXPECT_EQ(**hit, kRecord);

  auto miss = index->Get("key-2");
  ASSERT_TRUE(miss.ok());
  EXPECT_FALSE(miss->has_value());
}

TEST_F(CacheIndexTest, PutReplacesEarlierRecord) {
  auto index = OpenIndex();
  ASSERT_TRUE(index->Put("k", kRecord).ok());
  CacheRecord newer{"sha256:" + std::string(64, 'c'), "sha256:" + std::string(64, 'd'),
                    (1ull << 40) + 1};
  ASSERT_TRUE(index->Put("k", newer).ok());
  EXPECT_EQ(**index->Get("k"), newer);
}

TEST_F(CacheIndexTest, TracksHolders) {
  auto index = OpenIndex();
  const std::string blob = kRecord.layer_digest;
  ASSERT_TRUE(index->AddHolder(blob, "worker-b").ok());
  ASSERT_TRUE(index->AddHolder(blob, "worker-a").ok());
  ASSERT_TRUE(index->AddHolder(blob, "worker-a").ok());  // idempotent
  ASSERT_TRUE(index->AddHolder("sha256:other", "worker-c").ok());
  EXPECT_EQ(*index->Holders(blob), (std::vector<std::string>{"worker-a", "worker-b"}));

  ASSERT_TRUE(index->RemoveHolder(blob, "worker-a").ok());
  ASSERT_TRUE(index->RemoveHolder(blob, "never-held").ok());
  EXPECT_EQ(*index->Holders(blob), (std::vector<std::string>{"worker-b"}));
  EXPECT_TRUE(index->Holders("sha256:unknown")->empty());
}

// A base layer held by every worker of a large farm: counted, listed a
// window at a time, and asked about one worker, without listing them all.
TEST_F(CacheIndexTest, HoldersAreCountedWindowedAndLookedUpOneByOne) {
  auto index = OpenIndex();
  const std::string layer = kRecord.layer_digest;
  for (int i = 0; i < 20; ++i) {
    char id[8];
    std::snprintf(id, sizeof id, "w%02d", i);
    ASSERT_TRUE(index->AddHolder(layer, id).ok());
  }
  EXPECT_EQ(*index->HolderCount(layer), 20u);
  EXPECT_EQ(*index->HolderCount("sha256:none"), 0u);
  EXPECT_EQ(*index->HoldersFrom(layer, 5, 3), (std::vector<std::string>{"w05", "w06", "w07"}));
  EXPECT_EQ(*index->HoldersFrom(layer, 18, 5), (std::vector<std::string>{"w18", "w19"}));
  EXPECT_TRUE(*index->Holds(layer, "w07"));
  EXPECT_FALSE(*index->Holds(layer, "w20"));
  // The statements are kept and reused: the same answers again, and after
  // a change.
  ASSERT_TRUE(index->RemoveHolder(layer, "w06").ok());
  EXPECT_FALSE(*index->Holds(layer, "w06"));
  EXPECT_EQ(*index->HoldersFrom(layer, 5, 3), (std::vector<std::string>{"w05", "w07", "w08"}));
  EXPECT_EQ(*index->HolderCount(layer), 19u);
}

TEST_F(CacheIndexTest, StepsOfAJobAreRecordedWithTheirHolderAllOrNothing) {
  const std::string cfg1 = "sha256:" + std::string(64, '1'), cfg2 = "sha256:" + std::string(64, '2');
  const std::string layer = "sha256:" + std::string(64, '3');
  cache::StepRecord first{cfg1, {{"application/vnd.oci.image.layer.v1.tar+gzip", layer, "sha256:" + std::string(64, '4'), 10}}};
  cache::StepRecord second{cfg2, first.layers};
  {
    auto index = OpenIndex();
    ASSERT_TRUE(index->PutStepsHeldBy({{"k1", first}, {"k2", second}}, "worker-a").ok());
  }
  auto index = OpenIndex();
  auto got = index->GetStep("k2");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->config_digest, cfg2);
  ASSERT_EQ((*got)->layers.size(), 1u);
  EXPECT_EQ((*got)->layers[0].digest, layer);
  EXPECT_EQ(*index->Holders(cfg1), (std::vector<std::string>{"worker-a"}));
  EXPECT_EQ(*index->Holders(layer), (std::vector<std::string>{"worker-a"}));
  // A record the index refuses (no config) undoes the whole job's rows.
  cache::StepRecord bad{"", {}};
  auto refused = index->PutStepsHeldBy({{"k3", second}, {"k4", bad}}, "worker-b");
  ASSERT_FALSE(refused.ok());
  EXPECT_FALSE(index->GetStep("k3")->has_value());
  EXPECT_EQ(*index->Holders(cfg2), (std::vector<std::string>{"worker-a"}));
}

TEST_F(CacheIndexTest, SurvivesReopen) {
  {
    auto index = OpenIndex();
    ASSERT_TRUE(index->Put("durable", kRecord).ok());
    ASSERT_TRUE(index->AddHolder(kRecord.layer_digest, "worker-1").ok());
  }
  auto reopened = OpenIndex();
  auto hit = reopened->Get("durable");
  ASSERT_TRUE(hit.ok());
  ASSERT_TRUE(hit->has_value());
  EXPECT_EQ(**hit, kRecord);
  EXPECT_EQ(*reopened->Holders(kRecord.layer_digest), (std::vector<std::string>{"worker-1"}));
}

TEST_F(CacheIndexTest, UsesWriteAheadLog) {
  auto index = OpenIndex();
  ASSERT_TRUE(index->Put("k", kRecord).ok());
  // WAL mode is persistent in the file; check it from an independent connection.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  // A second reader sees the committed record while the writer is still open.
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT size FROM cache_records WHERE cache_key = 'k'", -1,
                               &stmt, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int64(stmt, 0), 4096);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST_F(CacheIndexTest, RejectsEmptyFields) {
  auto index = OpenIndex();
  auto put = index->Put("", kRecord);
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(put.error().code, "state.cache.invalid");
  EXPECT_EQ(put.error().message, "cache key is empty");
  auto holder = index->AddHolder(kRecord.layer_digest, "");
  ASSERT_FALSE(holder.ok());
  EXPECT_EQ(holder.error().message, "worker id is empty");
}

TEST_F(CacheIndexTest, ReportsUnopenablePath) {
  const std::string bad = (dir_ / "missing" / "index.db").string();
  auto index = CacheIndex::Open(bad);
  ASSERT_FALSE(index.ok());
  EXPECT_EQ(index.error().kind, ErrorKind::kInternal);
  EXPECT_EQ(index.error().code, "state.sqlite");
  EXPECT_EQ(index.error().message, "opening " + bad + ": unable to open database file");
}

TEST_F(CacheIndexTest, RefusesNewerSchema) {
  { OpenIndex(); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto index = CacheIndex::Open(path_);
  ASSERT_FALSE(index.ok());
  EXPECT_EQ(index.error().kind, ErrorKind::kUnimplemented);
  EXPECT_EQ(index.error().message,
            path_ + " has schema version 99, newer than this build's 1");
}

}  // namespace
}  // namespace manifold::coordinator
