#include "common/cas/lease.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/cas/testing/temp_dir.h"

namespace manifold::cas {
namespace {

using std::chrono::hours;
using std::chrono::system_clock;
using testing::DigestOf;
using testing::TempDir;

class LeaseTest : public ::testing::Test {
 protected:
  LeaseStore OpenLeases() {
    auto leases = LeaseStore::Open(dir_.path(), [this] { return now_; });
    MF_ASSERT(leases.ok(), leases.ok() ? "" : leases.error().ToString());
    return std::move(*leases);
  }
  std::vector<std::string> Files() {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir_.path() + "/leases")) {
      out.push_back(e.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  TempDir dir_;
  system_clock::time_point now_ = system_clock::time_point(std::chrono::seconds(1'700'000'000));
};

TEST_F(LeaseTest, CreateAddActive) {
  auto leases = OpenLeases();
  ASSERT_TRUE(leases.Create("build-1", now_ + hours(1)).ok());
  std::string a = DigestOf("a"), b = DigestOf("b");
  ASSERT_TRUE(leases.Add("build-1", {b, a}).ok());
  ASSERT_TRUE(leases.Add("build-1", {a}).ok());
  auto active = leases.Active();
  ASSERT_TRUE(active.ok());
  ASSERT_EQ(active->size(), 1u);
  EXPECT_EQ((*active)[0].id, "build-1");
  EXPECT_EQ((*active)[0].expiry, now_ + hours(1));
  std::vector<std::string> want = {a, b};
  std::sort(want.begin(), want.end());
  EXPECT_EQ((*active)[0].digests, want);
  // Atomic writes leave no temps behind.
  EXPECT_EQ(Files(), (std::vector<std::string>{".lock", "build-1"}));
}

TEST_F(LeaseTest, SurvivesReopen) {
  {
    auto leases = OpenLeases();
    ASSERT_TRUE(leases.Create("keep", now_ + hours(1)).ok());
    ASSERT_TRUE(leases.Add("keep", {DigestOf("x")}).ok());
  }
  auto active = OpenLeases().Active();
  ASSERT_EQ(active->size(), 1u);
  EXPECT_EQ((*active)[0].digests, std::vector<std::string>{DigestOf("x")});
}

TEST_F(LeaseTest, ExpiredLeasesAreIgnoredAndRemoved) {
  auto leases = OpenLeases();
  ASSERT_TRUE(leases.Create("short", now_ + hours(1)).ok());
  ASSERT_TRUE(leases.Create("long", now_ + hours(3)).ok());
  now_ += hours(2);
  auto active = leases.Active();
  ASSERT_EQ(active->size(), 1u);
  EXPECT_EQ((*active)[0].id, "long");
  EXPECT_EQ(Files(), (std::vector<std::string>{".lock", "long"}));

  now_ += hours(2);
  auto added = leases.Add("long", {DigestOf("late")});
  ASSERT_FALSE(added.ok());
  EXPECT_EQ(added.error().kind, ErrorKind::kTransient);
  EXPECT_EQ(added.error().code, "cas.lease_expired");
  EXPECT_EQ(added.error().message, "lease long expired; its blobs may have been collected");
  EXPECT_EQ(Files(), std::vector<std::string>{".lock"});
}

TEST_F(LeaseTest, RenewExtends) {
  auto leases = OpenLeases();
  ASSERT_TRUE(leases.Create("b", now_ + hours(1)).ok());
  ASSERT_TRUE(leases.Renew("b", now_ + hours(5)).ok());
  now_ += hours(2);
  EXPECT_EQ(leases.Active()->size(), 1u);
  auto past = leases.Renew("b", now_ - hours(1));
  EXPECT_EQ(past.error().code, "cas.lease_expiry_past");
  EXPECT_EQ(past.error().message, "lease b expiry is in the past");
}

TEST_F(LeaseTest, Release) {
  auto leases = OpenLeases();
  ASSERT_TRUE(leases.Create("build-1", now_ + hours(1)).ok());
  ASSERT_TRUE(leases.Release("build-1").ok());
  EXPECT_TRUE(leases.Active()->empty());
  EXPECT_TRUE(leases.Release("build-1").ok());  // idempotent
  auto added = leases.Add("build-1", {DigestOf("x")});
  ASSERT_FALSE(added.ok());
  EXPECT_EQ(added.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(added.error().code, "cas.lease_not_found");
  EXPECT_EQ(added.error().message, "lease build-1 not found");
}

TEST_F(LeaseTest, CreateTwiceFailsUntilExpired) {
  auto leases = OpenLeases();
  ASSERT_TRUE(leases.Create("dup", now_ + hours(1)).ok());
  auto again = leases.Create("dup", now_ + hours(1));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(again.error().code, "cas.lease_exists");
  EXPECT_EQ(again.error().message, "lease dup already exists");
  now_ += hours(2);
  EXPECT_TRUE(leases.Create("dup", now_ + hours(1)).ok());
  auto past = leases.Create("other", now_);
  EXPECT_EQ(past.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(past.error().code, "cas.lease_expiry_past");
}

TEST_F(LeaseTest, InvalidIdsNeverReachAPath) {
  auto leases = OpenLeases();
  std::ofstream(dir_.path() + "/victim") << "keep";
  const std::vector<std::string> bad = {"",    "../victim", "a/b", ".lock", ".tmp-x",
                                        "a b", "x\n",        "..",  "é",     std::string(65, 'a')};
  for (const std::string& id : bad) {
    SCOPED_TRACE(id);
    for (const Error& e : {leases.Create(id, now_ + hours(1)).error(),
                           leases.Add(id, {}).error(), leases.Renew(id, now_ + hours(1)).error(),
                           leases.Release(id).error()}) {
      EXPECT_EQ(e.kind, ErrorKind::kInvalidInput);
      EXPECT_EQ(e.code, "cas.lease_id_invalid");
    }
  }
  EXPECT_EQ(leases.Release("../victim").error().message,
            "invalid lease id \"../victim\": want 1-64 of [A-Za-z0-9_-]");
  EXPECT_TRUE(std::filesystem::exists(dir_.path() + "/victim"));
  EXPECT_TRUE(leases.Create(std::string(64, 'A'), now_ + hours(1)).ok());
  EXPECT_TRUE(leases.Create("Az09_-", now_ + hours(1)).ok());
}

TEST_F(LeaseTest, AddRejectsMalformedDigestsAndAddsNone) {
  auto leases = OpenLeases();
  ASSERT_TRUE(leases.Create("b", now_ + hours(1)).ok());
  auto added = leases.Add("b", {DigestOf("ok"), "sha256:../../etc"});
  ASSERT_FALSE(added.ok());
  EXPECT_EQ(added.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(added.error().code, "cas.digest_invalid");
  EXPECT_TRUE((*leases.Active())[0].digests.empty());
}

TEST_F(LeaseTest, CorruptLeaseFileStopsActive) {
  auto leases = OpenLeases();
  std::ofstream(dir_.path() + "/leases/broken") << "not a lease\n";
  auto active = leases.Active();
  ASSERT_FALSE(active.ok());
  EXPECT_EQ(active.error().kind, ErrorKind::kIntegrity);
  EXPECT_EQ(active.error().code, "cas.lease_corrupt");
  EXPECT_EQ(active.error().message, "lease broken is corrupt: bad header");

  std::ofstream(dir_.path() + "/leases/broken")
      << "manifold-lease v1\nexpiry_ms 1800000000000\nsha256:nope\n";
  EXPECT_EQ(leases.Active().error().message, "lease broken is corrupt: bad digest on line 3");
  std::ofstream(dir_.path() + "/leases/broken") << "manifold-lease v1\nexpiry_ms 99999999999999999\n";
  EXPECT_EQ(leases.Active().error().message, "lease broken is corrupt: bad expiry");
  std::ofstream(dir_.path() + "/leases/broken") << "manifold-lease v1\n";
  EXPECT_EQ(leases.Active().error().message, "lease broken is corrupt: truncated");
}

TEST_F(LeaseTest, OpenRemovesTempLeftovers) {
  { auto leases = OpenLeases(); }
  std::ofstream(dir_.path() + "/leases/.tmp-build-1") << "half";
  auto leases = OpenLeases();
  EXPECT_EQ(Files(), std::vector<std::string>{".lock"});
}

TEST_F(LeaseTest, ConcurrentAddsFromThreadsAreAllKept) {
  auto leases = OpenLeases();
  ASSERT_TRUE(leases.Create("shared", now_ + hours(1)).ok());
  auto add_many = [&leases](int base) {
    for (int i = 0; i < 25; ++i) {
      EXPECT_TRUE(leases.Add("shared", {DigestOf(std::to_string(base + i))}).ok());
    }
  };
  std::thread a(add_many, 0), b(add_many, 1000);
  a.join();
  b.join();
  EXPECT_EQ((*leases.Active())[0].digests.size(), 50u);
}

TEST_F(LeaseTest, ConcurrentAddsFromProcessesAreAllKept) {
  ASSERT_TRUE(OpenLeases().Create("shared", now_ + hours(1)).ok());
  pid_t pids[2];
  for (int p = 0; p < 2; ++p) {
    pids[p] = ::fork();
    ASSERT_GE(pids[p], 0);
    if (pids[p] == 0) {
      auto leases = LeaseStore::Open(dir_.path(), [t = now_] { return t; });
      if (!leases.ok()) ::_exit(10);
      for (int i = 0; i < 25; ++i) {
        if (!leases->Add("shared", {DigestOf(std::to_string(p * 1000 + i))}).ok()) ::_exit(11);
      }
      ::_exit(0);
    }
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  EXPECT_EQ((*OpenLeases().Active())[0].digests.size(), 50u);
  EXPECT_EQ(Files(), (std::vector<std::string>{".lock", "shared"}));
}

}  // namespace
}  // namespace manifold::cas
