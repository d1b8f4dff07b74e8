// LocalBlobStore behaviour the in-memory fake cannot show: the on-disk
// layout, crash leftovers, several threads and processes, streaming memory.
#include "common/cas/local_blob_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <csignal>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/cas/testing/temp_dir.h"
#include "common/crypto/sha256.h"

namespace manifold::cas {
namespace {

using testing::DigestOf;
using testing::TempDir;

std::vector<std::string> Names(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string FileContent(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::unique_ptr<LocalBlobStore> OpenStore(const std::string& root) {
  auto store = LocalBlobStore::Open(root);
  MF_ASSERT(store.ok(), store.ok() ? "" : store.error().ToString());
  return std::move(*store);
}

// Deterministic pseudo-random chunk `i` of a large blob.
void FillChunk(std::string& chunk, std::uint64_t i) {
  std::uint64_t x = i * 0x9e3779b97f4a7c15ULL + 1;
  for (auto& c : chunk) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
}

long MaxRssKiB() {
  struct rusage ru;
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

void SetOldMtime(const std::string& path) {
  struct timespec times[2];
  times[0].tv_sec = times[1].tv_sec = ::time(nullptr) - 3600;
  times[0].tv_nsec = times[1].tv_nsec = 0;
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
}

TEST(LocalBlobStoreTest, CreatesLayout) {
  TempDir dir;
  std::string root = dir.path() + "/nested/cas";
  auto store = OpenStore(root);
  EXPECT_TRUE(std::filesystem::is_directory(root + "/blobs/sha256"));
  EXPECT_TRUE(std::filesystem::is_directory(root + "/ingest"));
  EXPECT_TRUE(std::filesystem::is_directory(root + "/quarantine"));
  EXPECT_EQ(store->root(), root);
  EXPECT_EQ(store->swept_at_open(), 0u);
}

TEST(LocalBlobStoreTest, PublishesReadOnlyFileNamedByHex) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  auto writer = store->BeginIngest();
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Write("content").ok());
  // While writing, the bytes are only in ingest/.
  EXPECT_EQ(Names(dir.path() + "/ingest").size(), 1u);
  EXPECT_TRUE(Names(dir.path() + "/blobs/sha256").empty());
  auto digest = (*writer)->Commit();
  ASSERT_TRUE(digest.ok());
  std::string path = dir.path() + "/blobs/sha256/" + digest->substr(7);
  EXPECT_EQ(FileContent(path), "content");
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  EXPECT_TRUE(Names(dir.path() + "/ingest").empty());
}

TEST(LocalBlobStoreTest, StreamsLargeBlobInSmallChunks) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  constexpr std::uint64_t kSize = 64ull << 20;
  constexpr std::size_t kChunk = 4096 + 17;  // odd size: crosses buffer edges

  // The expected digest is computed by streaming too: nothing holds 64 MiB.
  crypto::Sha256 reference;
  std::string chunk(kChunk, '\0');
  for (std::uint64_t off = 0, i = 0; off < kSize; off += kChunk, ++i) {
    FillChunk(chunk, i);
    reference.Update(std::string_view(chunk).substr(0, std::min<std::uint64_t>(kChunk, kSize - off)));
  }
  std::string expected = "sha256:" + reference.HexDigest();

  long rss_before = MaxRssKiB();
  auto writer = store->BeginIngest(expected, kSize);
  ASSERT_TRUE(writer.ok());
  for (std::uint64_t off = 0, i = 0; off < kSize; off += kChunk, ++i) {
    FillChunk(chunk, i);
    auto part = std::string_view(chunk).substr(0, std::min<std::uint64_t>(kChunk, kSize - off));
    ASSERT_TRUE((*writer)->Write(part).ok());
  }
  auto digest = (*writer)->Commit();
  ASSERT_TRUE(digest.ok()) << digest.error().ToString();
  EXPECT_EQ(*digest, expected);
  EXPECT_EQ(*store->Stat(expected), kSize);

  auto reader = store->OpenBlob(expected, /*verify=*/true);
  ASSERT_TRUE(reader.ok());
  std::vector<char> buffer(1 << 16);
  std::uint64_t total = 0;
  for (;;) {
    auto n = (*reader)->Read(buffer);
    ASSERT_TRUE(n.ok()) << n.error().ToString();
    if (*n == 0) break;
    total += *n;
  }
  EXPECT_EQ(total, kSize);
  // Peak memory grew by far less than the blob.
  EXPECT_LT(MaxRssKiB() - rss_before, 16 * 1024);
}

TEST(LocalBlobStoreTest, FailedIngestRemovesItsTemp) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  auto writer = store->BeginIngest(DigestOf("expected"));
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Write("something else").ok());
  ASSERT_EQ((*writer)->Commit().error().code, "cas.digest_mismatch");
  EXPECT_TRUE(Names(dir.path() + "/ingest").empty());
  EXPECT_TRUE(Names(dir.path() + "/blobs/sha256").empty());

  auto sized = store->BeginIngest(std::nullopt, 2);
  ASSERT_TRUE(sized.ok());
  ASSERT_EQ((*sized)->Write("abc").error().code, "cas.size_mismatch");
  EXPECT_TRUE(Names(dir.path() + "/ingest").empty());
  EXPECT_TRUE(Names(dir.path() + "/blobs/sha256").empty());
}

TEST(LocalBlobStoreTest, TwoThreadsIngestSameDigest) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  std::string content(1 << 20, 'z');
  for (std::size_t i = 0; i < content.size(); i += 97) content[i] = static_cast<char>(i);
  std::string digest = DigestOf(content);

  auto writer_a = store->BeginIngest(digest, content.size());
  auto writer_b = store->BeginIngest(digest, content.size());
  ASSERT_TRUE(writer_a.ok() && writer_b.ok());
  Expected<std::string> result_a = std::string(), result_b = std::string();
  auto run = [&content](BlobWriter& w, Expected<std::string>& result) {
    for (std::size_t off = 0; off < content.size(); off += 1000) {
      auto wrote = w.Write(std::string_view(content).substr(off, 1000));
      if (!wrote.ok()) {
        result = std::move(wrote).error();
        return;
      }
    }
    result = w.Commit();
  };
  std::thread a(run, std::ref(**writer_a), std::ref(result_a));
  std::thread b(run, std::ref(**writer_b), std::ref(result_b));
  a.join();
  b.join();
  ASSERT_TRUE(result_a.ok()) << result_a.error().ToString();
  ASSERT_TRUE(result_b.ok()) << result_b.error().ToString();
  EXPECT_EQ(*result_a, digest);
  EXPECT_EQ(*result_b, digest);
  EXPECT_EQ(Names(dir.path() + "/blobs/sha256"), std::vector<std::string>{digest.substr(7)});
  EXPECT_EQ(FileContent(dir.path() + "/blobs/sha256/" + digest.substr(7)), content);
  EXPECT_TRUE(Names(dir.path() + "/ingest").empty());
}

// Child side of the process tests: returns the exit status.
int IngestInChild(const std::string& root, const std::string& content, int go_fd) {
  auto store = LocalBlobStore::Open(root);
  if (!store.ok()) return 10;
  auto writer = (*store)->BeginIngest(DigestOf(content), content.size());
  if (!writer.ok()) return 11;
  std::size_t half = content.size() / 2;
  if (!(*writer)->Write(std::string_view(content).substr(0, half)).ok()) return 12;
  char c;
  if (::read(go_fd, &c, 1) != 1) return 13;  // both children are mid-ingest here
  if (!(*writer)->Write(std::string_view(content).substr(half)).ok()) return 14;
  return (*writer)->Commit().ok() ? 0 : 15;
}

TEST(LocalBlobStoreTest, TwoProcessesIngestSameDigest) {
  TempDir dir;
  std::string content(3 << 20, 'p');
  for (std::size_t i = 0; i < content.size(); i += 101) content[i] = static_cast<char>(i * 7);
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  pid_t pids[2];
  for (pid_t& pid : pids) {
    pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(go[1]);
      ::_exit(IngestInChild(dir.path(), content, go[0]));
    }
  }
  ::close(go[0]);
  // Wait until both temps exist, then release both children at once.
  for (int i = 0; i < 500 && std::filesystem::exists(dir.path() + "/ingest") &&
                  Names(dir.path() + "/ingest").size() < 2;
       ++i) {
    ::usleep(10000);
  }
  EXPECT_EQ(::write(go[1], "gg", 2), 2);
  ::close(go[1]);
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  std::string hex = DigestOf(content).substr(7);
  EXPECT_EQ(Names(dir.path() + "/blobs/sha256"), std::vector<std::string>{hex});
  EXPECT_EQ(FileContent(dir.path() + "/blobs/sha256/" + hex), content);
  EXPECT_TRUE(Names(dir.path() + "/ingest").empty());
}

TEST(LocalBlobStoreTest, OpenSweepsCrashLeftoversButNotLiveIngests) {
  TempDir dir;
  const std::string content = "live ingest in another process";
  {
    auto first = OpenStore(dir.path());  // creates the layout
  }
  int ready[2], go[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(go), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(ready[0]);
    ::close(go[1]);
    auto store = LocalBlobStore::Open(dir.path());
    if (!store.ok()) ::_exit(10);
    auto writer = (*store)->BeginIngest(DigestOf(content));
    if (!writer.ok() || !(*writer)->Write(content.substr(0, 4)).ok()) ::_exit(11);
    if (::write(ready[1], "r", 1) != 1) ::_exit(12);
    char c;
    if (::read(go[0], &c, 1) != 1) ::_exit(13);
    if (!(*writer)->Write(content.substr(4)).ok()) ::_exit(14);
    ::_exit((*writer)->Commit().ok() ? 0 : 15);
  }
  ::close(ready[1]);
  ::close(go[0]);
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  auto live_names = Names(dir.path() + "/ingest");
  ASSERT_EQ(live_names.size(), 1u);

  // A live writer of this process, through another store instance.
  auto own = OpenStore(dir.path());
  auto own_writer = own->BeginIngest();
  ASSERT_TRUE(own_writer.ok());
  ASSERT_TRUE((*own_writer)->Write("mine").ok());

  // A crash leftover: a temp nobody holds a lock on, written before this Open.
  std::string leftover = dir.path() + "/ingest/0123456789abcdef0123456789abcdef";
  std::ofstream(leftover) << "half a blob";
  SetOldMtime(leftover);
  // The live temps are old too, so only their locks protect them.
  for (const auto& name : Names(dir.path() + "/ingest")) SetOldMtime(dir.path() + "/ingest/" + name);

  auto reopened = OpenStore(dir.path());
  EXPECT_EQ(reopened->swept_at_open(), 1u);
  EXPECT_FALSE(std::filesystem::exists(leftover));
  EXPECT_EQ(Names(dir.path() + "/ingest").size(), 2u);

  ASSERT_EQ(::write(go[1], "g", 1), 1);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(*reopened->ReadAll(DigestOf(content)), content);
  EXPECT_EQ(*(*own_writer)->Commit(), DigestOf("mine"));
  EXPECT_TRUE(Names(dir.path() + "/ingest").empty());
  ::close(ready[0]);
  ::close(go[1]);
}

// RELIABILITY F1: a writer killed with SIGKILL halfway through a blob leaves a
// temp file but never a visible blob; the next Open sweeps the temp.
TEST(LocalBlobStoreTest, SigkillMidIngestLeavesNoVisibleBlobAndIsSwept) {
  TempDir dir;
  std::string content(1 << 20, 'k');
  const std::string digest = DigestOf(content);
  { auto first = OpenStore(dir.path()); }
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(ready[0]);
    auto store = LocalBlobStore::Open(dir.path());
    if (!store.ok()) ::_exit(10);
    auto writer = (*store)->BeginIngest(digest, content.size());
    if (!writer.ok() || !(*writer)->Write(std::string_view(content).substr(0, content.size() / 2)).ok())
      ::_exit(11);
    if (::write(ready[1], "r", 1) != 1) ::_exit(12);
    for (;;) ::pause();  // killed here, mid-blob
  }
  ::close(ready[1]);
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  ::close(ready[0]);

  auto store = OpenStore(dir.path());
  EXPECT_EQ(store->swept_at_open(), 1u);
  EXPECT_TRUE(Names(dir.path() + "/ingest").empty());
  EXPECT_FALSE(*store->Has(digest));
  EXPECT_TRUE(Names(dir.path() + "/blobs/sha256").empty());
  // The same blob ingests cleanly afterwards.
  auto writer = store->BeginIngest(digest, content.size());
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Write(content).ok());
  EXPECT_EQ(*(*writer)->Commit(), digest);
}

TEST(LocalBlobStoreTest, SweepLeavesStrangersAlone) {
  TempDir dir;
  { auto first = OpenStore(dir.path()); }
  std::string fifo = dir.path() + "/ingest/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  ASSERT_TRUE(std::filesystem::create_directory(dir.path() + "/ingest/subdir"));
  SetOldMtime(fifo);
  auto store = OpenStore(dir.path());
  EXPECT_EQ(store->swept_at_open(), 0u);
  EXPECT_EQ(Names(dir.path() + "/ingest"), (std::vector<std::string>{"fifo", "subdir"}));
}

TEST(LocalBlobStoreTest, QuarantineHoldsTheBadBytes) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  auto writer = store->BeginIngest();
  ASSERT_TRUE((*writer)->Write("abcdef").ok());
  std::string digest = *(*writer)->Commit();
  std::string hex = digest.substr(7);
  std::string path = dir.path() + "/blobs/sha256/" + hex;
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(3);
    f.put('X');
  }
  auto read = store->ReadAll(digest);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code, "cas.corrupt");
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_EQ(FileContent(dir.path() + "/quarantine/" + hex), "abcXef");
  EXPECT_TRUE(store->List()->empty());
}

TEST(LocalBlobStoreTest, MalformedDigestNeverReachesAPath) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  std::string victim = dir.path() + "/victim";
  std::ofstream(victim) << "keep me";
  ASSERT_TRUE(std::filesystem::create_directories(dir.path() + "/blobs/sha256/x"));
  for (std::string digest : {"sha256:../../victim", "sha256:../../../victim", "sha256:x"}) {
    EXPECT_EQ(store->Delete(digest).error().code, "cas.digest_invalid");
    EXPECT_EQ(store->Has(digest).error().code, "cas.digest_invalid");
    EXPECT_EQ(store->OpenBlob(digest, false).error().code, "cas.digest_invalid");
  }
  EXPECT_EQ(FileContent(victim), "keep me");
  // Stray entries in blobs/sha256 are not blobs.
  EXPECT_TRUE(store->List()->empty());
}

TEST(LocalBlobStoreTest, ReaderAndWriterOutliveTheStore) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  auto writer = store->BeginIngest();
  ASSERT_TRUE(writer.ok());
  std::string digest = [&] {
    auto w = store->BeginIngest();
    EXPECT_TRUE((*w)->Write("kept").ok());
    return *(*w)->Commit();
  }();
  auto reader = store->OpenBlob(digest, true);
  ASSERT_TRUE(reader.ok());
  store.reset();
  ASSERT_TRUE((*writer)->Write("late").ok());
  EXPECT_EQ(*(*writer)->Commit(), DigestOf("late"));
  std::vector<char> buffer(16);
  EXPECT_EQ(*(*reader)->Read(buffer), 4u);
  EXPECT_EQ(*(*reader)->Read(buffer), 0u);
}

}  // namespace
}  // namespace manifold::cas
