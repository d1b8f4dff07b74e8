#include "common/cas/gc.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <map>
#include <thread>

#include "common/cas/lease.h"
#include "common/cas/local_blob_store.h"
#include "common/cas/testing/temp_dir.h"

namespace manifold::cas {
namespace {

using std::chrono::hours;
using std::chrono::system_clock;
using testing::DigestOf;
using testing::TempDir;

GcOptions NoGrace() {
  GcOptions options;
  options.min_age = std::chrono::seconds(0);
  return options;
}

class GcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = LocalBlobStore::Open(dir_.path());
    ASSERT_TRUE(store.ok());
    store_ = std::move(*store);
    auto leases = LeaseStore::Open(dir_.path(), [this] { return now_; });
    ASSERT_TRUE(leases.ok());
    leases_ = std::make_unique<LeaseStore>(std::move(*leases));
  }

  // Stores `content`; `kids` are its children for the graph below.
  std::string Put(const std::string& content, std::vector<std::string> kids = {}) {
    auto writer = store_->BeginIngest();
    EXPECT_TRUE((*writer)->Write(content).ok());
    std::string digest = *(*writer)->Commit();
    graph_[digest] = std::move(kids);
    return digest;
  }

  ChildrenFn Children() {
    return [this](const std::string& digest) -> Expected<std::vector<std::string>> {
      ++children_calls_;
      auto it = graph_.find(digest);
      if (it == graph_.end()) return std::vector<std::string>{};
      return it->second;
    };
  }

  Expected<GcStats> Prune(const std::vector<std::string>& roots, GcOptions options = NoGrace()) {
    return cas::Prune(*store_, roots, Children(), *leases_, options);
  }

  bool Has(const std::string& digest) { return *store_->Has(digest); }

  TempDir dir_;
  system_clock::time_point now_ = system_clock::now();
  std::unique_ptr<LocalBlobStore> store_;
  std::unique_ptr<LeaseStore> leases_;
  std::map<std::string, std::vector<std::string>> graph_;
  int children_calls_ = 0;
};

TEST_F(GcTest, RemovesOnlyUnreferencedBlobs) {
  std::string layer1 = Put("layer one");
  std::string layer2 = Put("layer two");
  std::string config = Put("{config}");
  std::string manifest = Put("{manifest}", {config, layer1, layer2});
  std::string index = Put("{index}", {manifest, DigestOf("not in this store")});
  std::string orphan1 = Put("orphan");
  std::string orphan2 = Put("another orphan!");

  auto stats = Prune({index});
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  EXPECT_EQ(stats->marked, 5u);
  EXPECT_EQ(stats->removed_blobs, 2u);
  EXPECT_EQ(stats->removed_bytes, 6u + 15u);
  EXPECT_EQ(stats->kept_young, 0u);
  for (const auto& d : {layer1, layer2, config, manifest, index}) EXPECT_TRUE(Has(d));
  EXPECT_FALSE(Has(orphan1));
  EXPECT_FALSE(Has(orphan2));
  EXPECT_EQ(store_->List()->size(), 5u);
}

TEST_F(GcTest, NoRootsRemovesEverything) {
  Put("a");
  Put("b");
  auto stats = Prune({});
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->removed_blobs, 2u);
  EXPECT_TRUE(store_->List()->empty());
}

TEST_F(GcTest, MissingRootIsSkipped) {
  std::string kept = Put("kept");
  auto stats = Prune({DigestOf("gone"), kept});
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->marked, 1u);
  EXPECT_TRUE(Has(kept));
}

TEST_F(GcTest, LeasesKeepBlobsUntilExpiryOrRelease) {
  std::string layer = Put("leased layer");
  std::string manifest = Put("{leased manifest}", {layer});
  std::string other = Put("leased by another build");
  ASSERT_TRUE(leases_->Create("build-1", now_ + hours(1)).ok());
  ASSERT_TRUE(leases_->Add("build-1", {manifest}).ok());
  ASSERT_TRUE(leases_->Create("build-2", now_ + hours(3)).ok());
  ASSERT_TRUE(leases_->Add("build-2", {other}).ok());

  auto stats = Prune({});
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->removed_blobs, 0u);
  EXPECT_TRUE(Has(layer));  // kept through the leased manifest's children

  now_ += hours(2);  // build-1 expired
  stats = Prune({});
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->removed_blobs, 2u);
  EXPECT_FALSE(Has(manifest));
  EXPECT_FALSE(Has(layer));
  EXPECT_TRUE(Has(other));

  ASSERT_TRUE(leases_->Release("build-2").ok());
  stats = Prune({});
  ASSERT_TRUE(stats.ok());
  EXPECT_FALSE(Has(other));
}

TEST_F(GcTest, ChildrenErrorStopsBeforeDeleting) {
  std::string orphan = Put("orphan");
  std::string manifest = Put("{bad manifest}");
  ChildrenFn failing = [&](const std::string& digest) -> Expected<std::vector<std::string>> {
    if (digest == manifest) {
      return MakeError(ErrorKind::kInvalidInput, "oci.manifest_invalid", "manifest is not JSON");
    }
    return std::vector<std::string>{};
  };
  auto stats = cas::Prune(*store_, {manifest}, failing, *leases_, NoGrace());
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.error().code, "oci.manifest_invalid");
  EXPECT_EQ(stats.error().ToString(), "listing children of " + manifest + ": manifest is not JSON");
  EXPECT_TRUE(Has(orphan));
}

TEST_F(GcTest, MalformedDigestsStopBeforeDeleting) {
  std::string orphan = Put("orphan");
  std::string manifest = Put("{manifest}", {"sha256:../../x"});
  auto stats = Prune({manifest});
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(stats.error().code, "cas.digest_invalid");
  EXPECT_EQ(stats.error().ToString(),
            "child of " + manifest +
                ": invalid digest \"sha256:../../x\": want sha256:<64 lowercase hex>");
  EXPECT_TRUE(Has(orphan));

  auto bad_root = Prune({"sha256:nope"});
  ASSERT_FALSE(bad_root.ok());
  EXPECT_EQ(bad_root.error().code, "cas.digest_invalid");
  EXPECT_TRUE(Has(orphan));
}

TEST_F(GcTest, CorruptLeaseStopsBeforeDeleting) {
  std::string orphan = Put("orphan");
  { std::ofstream(dir_.path() + "/leases/broken") << "garbage\n"; }
  auto stats = Prune({});
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.error().code, "cas.lease_corrupt");
  EXPECT_TRUE(Has(orphan));
}

TEST_F(GcTest, MinAgeSparesFreshBlobs) {
  std::string fresh = Put("fresh");
  std::string old = Put("old");
  struct timespec times[2];
  times[0].tv_sec = times[1].tv_sec = ::time(nullptr) - 3600;
  times[0].tv_nsec = times[1].tv_nsec = 0;
  ASSERT_EQ(::utimensat(AT_FDCWD, (dir_.path() + "/blobs/sha256/" + old.substr(7)).c_str(), times,
                        0),
            0);
  auto stats = Prune({}, GcOptions{});  // default grace: 10 minutes
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->removed_blobs, 1u);
  EXPECT_EQ(stats->kept_young, 1u);
  EXPECT_TRUE(Has(fresh));
  EXPECT_FALSE(Has(old));
}

TEST_F(GcTest, BusyWhileAWriterIsAlive) {
  std::string orphan = Put("orphan");
  auto writer = store_->BeginIngest();
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Write("in flight").ok());
  auto busy = Prune({});
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.error().kind, ErrorKind::kTransient);
  EXPECT_EQ(busy.error().code, "cas.gc_busy");
  EXPECT_EQ(busy.error().message,
            "blob ingests in progress in " + dir_.path() + "; garbage collection skipped");
  // Committed but not yet destroyed: still protected, so the caller can lease it.
  std::string digest = *(*writer)->Commit();
  EXPECT_EQ(Prune({}).error().code, "cas.gc_busy");
  writer->reset();
  auto stats = Prune({});
  ASSERT_TRUE(stats.ok());
  EXPECT_FALSE(Has(orphan));
  EXPECT_FALSE(Has(digest));
}

TEST_F(GcTest, WaitingPruneSeesTheWritersLease) {
  ASSERT_TRUE(leases_->Create("build-1", now_ + hours(1)).ok());
  auto writer = store_->BeginIngest();
  ASSERT_TRUE(writer.ok());
  std::atomic<bool> done = false;
  Expected<GcStats> stats = GcStats{};
  GcOptions options = NoGrace();
  options.wait_for_ingests = true;
  std::thread gc([&] {
    stats = Prune({}, options);
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(done);  // blocked behind the writer
  ASSERT_TRUE((*writer)->Write("new layer").ok());
  std::string digest = *(*writer)->Commit();
  ASSERT_TRUE(leases_->Add("build-1", {digest}).ok());
  writer->reset();
  gc.join();
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  EXPECT_TRUE(Has(digest));
}

TEST_F(GcTest, IngestWaitsForARunningGc) {
  auto lock = store_->LockForGc(/*wait=*/false);
  ASSERT_TRUE(lock.ok() && lock->has_value());
  std::atomic<bool> started = false;
  std::thread ingest([&] {
    auto writer = store_->BeginIngest();
    started = true;
    EXPECT_TRUE(writer.ok());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(started);
  lock->reset();
  ingest.join();
  EXPECT_TRUE(started);
}

}  // namespace
}  // namespace manifold::cas
