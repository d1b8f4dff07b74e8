#include "common/layer/diff.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/un.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <span>
#include <sstream>
#include <thread>

#include "common/crypto/sha256.h"
#include "common/layer/diff_test_util.h"
#include "common/layer/layer_writer.h"
#include "common/layer/tar_writer.h"

namespace manifold::layer {
namespace {

using testutil::BuildSampleTree;
using testutil::MakeDir;
using testutil::ReadEntry;
using testutil::ReadTar;
using testutil::RunShell;
using testutil::SetAllMtimes;
using testutil::SetMtime;
using testutil::SetXattr;
using testutil::TempDir;
using testutil::WriteFile;

constexpr std::int64_t kMtime = 1600000000;
// A valid VFS_CAP_REVISION_2 value (effective, cap_net_raw permitted).
const std::string kCapability(
    "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    "\x00\x00\x00\x00",
    20);

bool IsRoot() { return ::geteuid() == 0; }

std::string TarOf(const std::string& dir, const DiffOptions& options = {},
                  DiffStats* stats = nullptr) {
  StringSink sink;
  TarWriter tar(sink);
  auto result = WriteTree(dir, tar, options);
  EXPECT_TRUE(result.ok()) << result.error().ToString();
  if (result.ok() && stats != nullptr) *stats = *result;
  return sink.data();
}

std::vector<std::string> Paths(const std::vector<ReadEntry>& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries) out.push_back(e.entry.path);
  return out;
}

const TarEntry& Find(const std::vector<ReadEntry>& entries, const std::string& path) {
  for (const auto& e : entries) {
    if (e.entry.path == path) return e.entry;
  }
  ADD_FAILURE() << "no entry " << path;
  static const TarEntry kNone;
  return kNone;
}

std::string WriteTempFile(const TempDir& dir, const std::string& name, const std::string& bytes) {
  std::string path = dir / name;
  WriteFile(path, bytes);
  return path;
}

TEST(DiffTest, WritesSortedEntriesWithMetadata) {
  TempDir dir;
  ASSERT_NO_FATAL_FAILURE(BuildSampleTree(dir.path()));
  if (IsRoot()) {
    ASSERT_EQ(::lchown((dir / "b/c/d.txt").c_str(), 1234, 5678), 0);
  }
  ASSERT_NO_FATAL_FAILURE(SetAllMtimes(dir.path(), kMtime));

  DiffStats stats;
  auto entries = ReadTar(TarOf(dir.path(), {}, &stats));
  EXPECT_EQ(Paths(entries),
            (std::vector<std::string>{"a.txt", "b/", "b/c/", "b/c/d.txt", "b/h2", "b-x", "bin/",
                                      "bin/su", "bin/tool", "empty/", "h1", "link"}));
  EXPECT_EQ(stats.entries, 12u);
  EXPECT_EQ(stats.regular_files, 6u);
  EXPECT_EQ(stats.directories, 4u);
  EXPECT_EQ(stats.hardlinks, 1u);
  EXPECT_EQ(stats.symlinks, 1u);
  EXPECT_EQ(stats.data_bytes, 6u + 5 + 6 + 4 + 2 + 10);

  for (const auto& e : entries) {
    SCOPED_TRACE(e.entry.path);
    EXPECT_EQ(e.entry.mtime, kMtime);
    if (e.entry.path != "b/c/d.txt" || !IsRoot()) {
      EXPECT_EQ(e.entry.uid, static_cast<std::int64_t>(::geteuid()));
      EXPECT_EQ(e.entry.gid, static_cast<std::int64_t>(::getegid()));
    }
  }
  EXPECT_EQ(Find(entries, "a.txt").xattrs,
            (std::map<std::string, std::string>{{"user.foo", "bar"}}));
  EXPECT_EQ(entries[0].data, "alpha\n");
  EXPECT_EQ(Find(entries, "b/").type, EntryType::kDirectory);
  EXPECT_EQ(Find(entries, "b/c/").mode, 0700u);
  EXPECT_EQ(Find(entries, "b/c/d.txt").mode, 0600u);
  if (IsRoot()) {
    EXPECT_EQ(Find(entries, "b/c/d.txt").uid, 1234);
    EXPECT_EQ(Find(entries, "b/c/d.txt").gid, 5678);
  }
  EXPECT_EQ(entries[4].data, "linked");
  EXPECT_EQ(Find(entries, "bin/su").mode, 04755u);
  EXPECT_EQ(Find(entries, "bin/tool").mode, 0755u);
  EXPECT_EQ(Find(entries, "empty/").mode, 0755u);
  const TarEntry& h1 = Find(entries, "h1");
  EXPECT_EQ(h1.type, EntryType::kHardlink);
  EXPECT_EQ(h1.linkname, "b/h2");
  EXPECT_EQ(h1.size, 0);
  const TarEntry& link = Find(entries, "link");
  EXPECT_EQ(link.type, EntryType::kSymlink);
  EXPECT_EQ(link.linkname, "/etc/passwd");
  EXPECT_EQ(link.mode, 0777u);
}

TEST(DiffTest, SameTreeTwiceGivesIdenticalBytes) {
  TempDir dir;
  ASSERT_NO_FATAL_FAILURE(BuildSampleTree(dir.path()));
  std::string first = TarOf(dir.path());
  EXPECT_EQ(TarOf(dir.path()), first);
  // Through an O_PATH fd as well.
  int fd = ::open(dir.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  StringSink sink;
  TarWriter tar(sink);
  ASSERT_TRUE(WriteTree(fd, tar, {}).ok());
  ::close(fd);
  EXPECT_EQ(sink.data(), first);
}

TEST(DiffTest, CopiesInDifferentDirectoriesGiveTheSameDigest) {
  TempDir one, two;
  ASSERT_NO_FATAL_FAILURE(BuildSampleTree(one.path()));
  ASSERT_NO_FATAL_FAILURE(BuildSampleTree(two.path()));
  ASSERT_NO_FATAL_FAILURE(SetAllMtimes(one.path(), kMtime));
  ASSERT_NO_FATAL_FAILURE(SetAllMtimes(two.path(), kMtime));
  HashingSink out_one, out_two;
  auto a = WriteLayer(one.path(), out_one, Compression::kGzip, {});
  auto b = WriteLayer(two.path(), out_two, Compression::kGzip, {});
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  ASSERT_TRUE(b.ok()) << b.error().ToString();
  EXPECT_EQ(a->diff_id, b->diff_id);
  EXPECT_EQ(a->digest, b->digest);

  // An mtime is part of the content.
  ASSERT_NO_FATAL_FAILURE(SetMtime(two / "b/c/d.txt", kMtime + 1));
  HashingSink out_three;
  auto c = WriteLayer(two.path(), out_three, Compression::kGzip, {});
  ASSERT_TRUE(c.ok());
  EXPECT_NE(c->diff_id, a->diff_id);
}

TEST(DiffTest, SourceDateEpochClampsMtimes) {
  TempDir dir;
  ASSERT_NO_FATAL_FAILURE(WriteFile(dir / "old", "o"));
  ASSERT_NO_FATAL_FAILURE(WriteFile(dir / "new", "n"));
  ASSERT_NO_FATAL_FAILURE(MakeDir(dir / "d"));
  ASSERT_NO_FATAL_FAILURE(testutil::MakeSymlink("old", dir / "d/l"));
  ASSERT_NO_FATAL_FAILURE(SetMtime(dir / "old", 1000));
  ASSERT_NO_FATAL_FAILURE(SetMtime(dir / "new", 2000000000));
  ASSERT_NO_FATAL_FAILURE(SetMtime(dir / "d/l", 2000000000));
  ASSERT_NO_FATAL_FAILURE(SetMtime(dir / "d", 1500000001));

  DiffOptions options;
  options.source_date_epoch = 1500000000;
  auto entries = ReadTar(TarOf(dir.path(), options));
  ASSERT_EQ(Paths(entries), (std::vector<std::string>{"d/", "d/l", "new", "old"}));
  EXPECT_EQ(entries[0].entry.mtime, 1500000000);
  EXPECT_EQ(entries[1].entry.mtime, 1500000000);
  EXPECT_EQ(entries[2].entry.mtime, 1500000000);
  EXPECT_EQ(entries[3].entry.mtime, 1000);

  auto unclamped = ReadTar(TarOf(dir.path()));
  ASSERT_EQ(unclamped.size(), 4u);
  EXPECT_EQ(unclamped[2].entry.mtime, 2000000000);
}

TEST(DiffTest, GnuTarListsEveryEntry) {
  TempDir dir, out;
  ASSERT_NO_FATAL_FAILURE(BuildSampleTree(dir.path()));
  ASSERT_NO_FATAL_FAILURE(SetAllMtimes(dir.path(), 86400));
  std::string file = WriteTempFile(out, "layer.tar", TarOf(dir.path()));
  int status = 0;
  std::string listing = RunShell("TZ=UTC tar --numeric-owner -tvf " + file + " 2>&1", &status);
  ASSERT_EQ(status, 0) << listing;
  std::string owner = std::to_string(::geteuid()) + "/" + std::to_string(::getegid());
  std::vector<std::vector<std::string>> lines;
  std::istringstream in(listing);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string s; words >> s;) w.push_back(s);
    // Drop the owner, size and date columns' variability: keep mode + name part.
    ASSERT_GE(w.size(), 6u) << line;
    EXPECT_EQ(w[1], owner) << line;
    EXPECT_EQ(w[3] + " " + w[4], "1970-01-02 00:00") << line;
    w.erase(w.begin() + 1, w.begin() + 5);
    lines.push_back(w);
  }
  using V = std::vector<std::string>;
  EXPECT_EQ(lines, (std::vector<V>{
                       V{"-rw-r--r--", "a.txt"},
                       V{"drwxr-xr-x", "b/"},
                       V{"drwx------", "b/c/"},
                       V{"-rw-------", "b/c/d.txt"},
                       V{"-rw-r--r--", "b/h2"},
                       V{"-rw-r--r--", "b-x"},
                       V{"drwxr-xr-x", "bin/"},
                       V{"-rwsr-xr-x", "bin/su"},
                       V{"-rwxr-xr-x", "bin/tool"},
                       V{"drwxr-xr-x", "empty/"},
                       V{"hrw-r--r--", "h1", "link", "to", "b/h2"},
                       V{"lrwxrwxrwx", "link", "->", "/etc/passwd"},
                   }));
}

// type, mode, owner, mtime, content or target, kept xattrs: one line per path.
std::map<std::string, std::string> Snapshot(const std::string& root) {
  std::map<std::string, std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    std::string path = e.path().string();
    struct stat st;
    EXPECT_EQ(::lstat(path.c_str(), &st), 0);
    std::ostringstream line;
    line << std::oct << st.st_mode << std::dec << " " << st.st_uid << ":" << st.st_gid;
    if (!S_ISLNK(st.st_mode)) line << " t=" << st.st_mtim.tv_sec;
    if (S_ISREG(st.st_mode)) {
      std::ifstream f(path, std::ios::binary);
      line << " data=" << std::string(std::istreambuf_iterator<char>(f), {});
    } else if (S_ISLNK(st.st_mode)) {
      line << " -> " << std::filesystem::read_symlink(path).string();
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      line << " dev=" << major(st.st_rdev) << "," << minor(st.st_rdev);
    }
    for (const char* name : {"user.foo", "security.capability"}) {
      char value[256];
      ssize_t n = ::lgetxattr(path.c_str(), name, value, sizeof value);
      if (n >= 0)
        line << " " << name << "="
             << crypto::HexEncode(reinterpret_cast<std::uint8_t*>(value),
                                  static_cast<std::size_t>(n));
    }
    out[path.substr(root.size())] = line.str();
  }
  return out;
}

TEST(DiffTest, GnuTarExtractReproducesTheTree) {
  TempDir dir, work;
  ASSERT_NO_FATAL_FAILURE(BuildSampleTree(dir.path()));
  if (IsRoot()) {
    ASSERT_EQ(::lchown((dir / "b/c/d.txt").c_str(), 1234, 5678), 0);
    ASSERT_NO_FATAL_FAILURE(SetXattr(dir / "bin/tool", "security.capability", kCapability));
    ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0640), 0);
    ASSERT_EQ(::mknod((dir / "null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
    ASSERT_EQ(::chmod((dir / "fifo").c_str(), 0640), 0);
    ASSERT_EQ(::chmod((dir / "null").c_str(), 0666), 0);
  }
  ASSERT_NO_FATAL_FAILURE(SetAllMtimes(dir.path(), kMtime));
  std::string file = WriteTempFile(work, "layer.tar", TarOf(dir.path()));
  ASSERT_NO_FATAL_FAILURE(MakeDir(work / "out"));
  int status = 0;
  std::string log = RunShell("tar --xattrs --xattrs-include='*' --numeric-owner -xpf " + file +
                                 " -C " + (work / "out") + " 2>&1",
                             &status);
  ASSERT_EQ(status, 0) << log;
  EXPECT_EQ(Snapshot(work / "out"), Snapshot(dir.path()));
  struct stat h1, h2;
  ASSERT_EQ(::lstat((work / "out/h1").c_str(), &h1), 0);
  ASSERT_EQ(::lstat((work / "out/b/h2").c_str(), &h2), 0);
  EXPECT_EQ(h1.st_ino, h2.st_ino);
}

TEST(DiffTest, KeepsDevicesFifosAndCapabilitiesAsRoot) {
  if (!IsRoot()) GTEST_SKIP() << "needs root (mknod, security.* and trusted.* xattrs)";
  TempDir dir;
  ASSERT_EQ(::mknod((dir / "null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  ASSERT_EQ(::mknod((dir / "loop").c_str(), S_IFBLK | 0660, makedev(7, 0)), 0);
  ASSERT_EQ(::mkfifo((dir / "pipe").c_str(), 0600), 0);
  ASSERT_NO_FATAL_FAILURE(WriteFile(dir / "ping", "elf", 0755));
  ASSERT_NO_FATAL_FAILURE(SetXattr(dir / "ping", "security.capability", kCapability));
  ASSERT_NO_FATAL_FAILURE(SetXattr(dir / "ping", "trusted.secret", "dropped"));
  ASSERT_NO_FATAL_FAILURE(SetXattr(dir / "ping", "user.keep", "kept"));
  ASSERT_EQ(::chmod((dir / "null").c_str(), 0666), 0);  // undo the umask
  ASSERT_EQ(::chmod((dir / "loop").c_str(), 0660), 0);

  DiffStats stats;
  auto entries = ReadTar(TarOf(dir.path(), {}, &stats));
  ASSERT_EQ(Paths(entries), (std::vector<std::string>{"loop", "null", "ping", "pipe"}));
  EXPECT_EQ(entries[0].entry.type, EntryType::kBlockDevice);
  EXPECT_EQ(entries[0].entry.devmajor, 7u);
  EXPECT_EQ(entries[0].entry.devminor, 0u);
  EXPECT_EQ(entries[0].entry.mode, 0660u);
  EXPECT_EQ(entries[1].entry.type, EntryType::kCharDevice);
  EXPECT_EQ(entries[1].entry.devmajor, 1u);
  EXPECT_EQ(entries[1].entry.devminor, 3u);
  EXPECT_EQ(entries[1].entry.mode, 0666u);
  EXPECT_EQ(entries[2].entry.xattrs,
            (std::map<std::string, std::string>{{"security.capability", kCapability},
                                                {"user.keep", "kept"}}));
  EXPECT_EQ(entries[3].entry.type, EntryType::kFifo);
  EXPECT_EQ(stats.special_files, 3u);
}

TEST(DiffTest, SkipsSockets) {
  TempDir dir;
  ASSERT_NO_FATAL_FAILURE(WriteFile(dir / "file", "x"));
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::string path = dir / "sock";
  ASSERT_LT(path.size(), sizeof addr.sun_path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);
  DiffStats stats;
  auto entries = ReadTar(TarOf(dir.path(), {}, &stats));
  EXPECT_EQ(Paths(entries), std::vector<std::string>{"file"});
  EXPECT_EQ(stats.sockets_skipped, 1u);
}

TEST(DiffTest, LongNamesRoundTrip) {
  TempDir dir, work;
  std::string long_file(200, 'f');
  std::string nested;
  for (int i = 0; i < 4; ++i) {
    nested += std::string(60, static_cast<char>('a' + i)) + "/";
    ASSERT_NO_FATAL_FAILURE(MakeDir(dir / nested));
  }
  nested += std::string(56, 'z');
  ASSERT_EQ(nested.size(), 300u);
  ASSERT_NO_FATAL_FAILURE(WriteFile(dir / long_file, "long"));
  ASSERT_NO_FATAL_FAILURE(WriteFile(dir / nested, "nested"));
  ASSERT_NO_FATAL_FAILURE(testutil::MakeSymlink(nested, dir / "s"));
  std::string tar = TarOf(dir.path());
  auto entries = ReadTar(tar);
  ASSERT_EQ(entries.size(), 7u);
  EXPECT_EQ(entries[4].entry.path, nested);
  EXPECT_EQ(entries[4].data, "nested");
  EXPECT_EQ(entries[5].entry.path, long_file);
  EXPECT_EQ(entries[5].data, "long");
  EXPECT_EQ(entries[6].entry.linkname, nested);

  std::string file = WriteTempFile(work, "layer.tar", tar);
  int status = 0;
  std::string listing = RunShell("tar -tf " + file, &status);
  ASSERT_EQ(status, 0);
  EXPECT_NE(listing.find("\n" + nested + "\n"), std::string::npos) << listing;
  EXPECT_NE(listing.find("\n" + long_file + "\n"), std::string::npos) << listing;
}

TEST(DiffTest, DoesNotFollowSymlinks) {
  TempDir dir;
  ASSERT_NO_FATAL_FAILURE(testutil::MakeSymlink("/etc", dir / "etc"));
  ASSERT_NO_FATAL_FAILURE(testutil::MakeSymlink("../../..", dir / "up"));
  auto entries = ReadTar(TarOf(dir.path()));
  ASSERT_EQ(Paths(entries), (std::vector<std::string>{"etc", "up"}));
  EXPECT_EQ(entries[0].entry.type, EntryType::kSymlink);
  EXPECT_EQ(entries[0].entry.linkname, "/etc");
  EXPECT_EQ(entries[1].entry.linkname, "../../..");
}

TEST(DiffTest, SparseFileHolesReadAsZeros) {
  TempDir dir;
  constexpr off_t kSize = 3 * (1 << 20) + 7;
  int fd = ::open((dir / "holes").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, "head", 4, 0), 4);
  ASSERT_EQ(::pwrite(fd, "middle", 6, 3 << 19), 6);
  ASSERT_EQ(::ftruncate(fd, kSize), 0);
  ::close(fd);
  std::string expect(kSize, '\0');
  expect.replace(0, 4, "head");
  expect.replace(3 << 19, 6, "middle");
  DiffStats stats;
  auto entries = ReadTar(TarOf(dir.path(), {}, &stats));
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].entry.size, kSize);
  EXPECT_TRUE(entries[0].data == expect);
  EXPECT_EQ(stats.data_bytes, static_cast<std::uint64_t>(kSize));
}

// Hands bytes from a writer thread to a reader thread, one chunk at a time,
// to stream a huge tar into libarchive without storing it.
class Channel : public ByteSink, public ByteSource {
 public:
  Expected<void> Write(std::string_view data) override {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return offset_ == chunk_.size() || reader_gone_; });
    if (reader_gone_) return MakeError(ErrorKind::kDisconnected, "test.channel", "reader gone");
    chunk_.assign(data);
    offset_ = 0;
    cv_.notify_all();
    return Ok();
  }
  Expected<std::size_t> Read(std::span<char> buffer) override {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return offset_ < chunk_.size() || writer_done_; });
    std::size_t n = std::min(buffer.size(), chunk_.size() - offset_);
    std::memcpy(buffer.data(), chunk_.data() + offset_, n);
    offset_ += n;
    if (offset_ == chunk_.size()) cv_.notify_all();
    return n;
  }
  void WriterDone() {
    std::lock_guard lock(mu_);
    writer_done_ = true;
    cv_.notify_all();
  }
  void ReaderGone() {
    std::lock_guard lock(mu_);
    reader_gone_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::string chunk_;
  std::size_t offset_ = 0;
  bool writer_done_ = false;
  bool reader_gone_ = false;
};

TEST(DiffTest, SparseFileOver8GiBStreamsWithPaxSize) {
  constexpr std::uint64_t kSize = std::uint64_t{9} << 30;
  TempDir dir;
  int fd = ::open((dir / "sparse").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  if (::ftruncate(fd, static_cast<off_t>(kSize)) != 0) {
    ::close(fd);
    GTEST_SKIP() << "cannot make a 9 GiB sparse file here: " << std::strerror(errno);
  }
  ASSERT_EQ(::pwrite(fd, "tail", 4, static_cast<off_t>(kSize - 4)), 4);
  ::close(fd);
  ASSERT_NO_FATAL_FAILURE(SetAllMtimes(dir.path(), kMtime));

  // Pass 1: hash only.
  HashingSink first;
  {
    TarWriter tar(first);
    auto stats = WriteTree(dir.path(), tar, {});
    ASSERT_TRUE(stats.ok()) << stats.error().ToString();
    EXPECT_EQ(stats->data_bytes, kSize);
  }
  // pax header block + "19 size=9663676416\n" padded + ustar block + data + end.
  EXPECT_EQ(first.bytes(), 512 + 512 + 512 + kSize + 1024);

  // Pass 2: stream into libarchive through a channel, hashing on the way.
  Channel channel;
  HashingSink second(&channel);
  Expected<DiffStats> written = MakeError(ErrorKind::kInternal, "test", "not run");
  std::thread writer([&] {
    TarWriter tar(second);
    written = WriteTree(dir.path(), tar, {});
    channel.WriterDone();
  });
  // Whatever happens below, unblock the writer and wait for it.
  struct Joiner {
    std::thread& thread;
    Channel& channel;
    ~Joiner() {
      channel.ReaderGone();
      thread.join();
    }
  };
  std::vector<TarEntry> seen;
  {
    Joiner joiner{writer, channel};
    auto reader = TarReader::Open(channel);
    ASSERT_TRUE(reader.ok()) << reader.error().ToString();
    for (;;) {
      auto next = (*reader)->Next();  // skips the 9 GiB of data by reading it
      ASSERT_TRUE(next.ok()) << next.error().ToString();
      if (!*next) break;
      seen.push_back(**next);
    }
    // Drain what libarchive did not need (none expected: it reads the end blocks).
    char rest[4096];
    while (*channel.Read(rest) > 0) {
    }
  }
  ASSERT_TRUE(written.ok()) << written.error().ToString();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].path, "sparse");
  EXPECT_EQ(seen[0].size, static_cast<std::int64_t>(kSize));
  EXPECT_EQ(seen[0].mtime, kMtime);
  EXPECT_EQ(second.bytes(), first.bytes());
  EXPECT_EQ(second.Digest(), first.Digest());
}

TEST(DiffTest, OverlayWhiteoutsAndOpaqueDirectories) {
  if (!IsRoot()) GTEST_SKIP() << "needs root (mknod 0/0, trusted.overlay.* xattrs)";
  TempDir upper;
  ASSERT_NO_FATAL_FAILURE(MakeDir(upper / "etc"));
  ASSERT_NO_FATAL_FAILURE(SetXattr(upper / "etc", "trusted.overlay.opaque", "y"));
  ASSERT_NO_FATAL_FAILURE(WriteFile(upper / "etc/x", "x"));
  ASSERT_NO_FATAL_FAILURE(MakeDir(upper / "usr"));
  ASSERT_NO_FATAL_FAILURE(MakeDir(upper / "usr/share"));
  ASSERT_NO_FATAL_FAILURE(SetXattr(upper / "usr/share", "trusted.overlay.origin", "ignored"));
  ASSERT_EQ(::mknod((upper / "usr/share/doc").c_str(), S_IFCHR, makedev(0, 0)), 0);
  // overlayfs shares one whiteout inode between whiteouts: not a hardlink.
  ASSERT_NO_FATAL_FAILURE(
      testutil::MakeHardlink(upper / "usr/share/doc", upper / "usr/share/gone"));
  ASSERT_NO_FATAL_FAILURE(WriteFile(upper / "usr/share/a.txt", "a"));
  ASSERT_NO_FATAL_FAILURE(MakeDir(upper / "usr/share/zz"));
  ASSERT_NO_FATAL_FAILURE(SetAllMtimes(upper.path(), kMtime));

  DiffOptions overlay;
  overlay.overlay_upper = true;
  DiffStats stats;
  auto entries = ReadTar(TarOf(upper.path(), overlay, &stats));
  EXPECT_EQ(Paths(entries),
            (std::vector<std::string>{"etc/", "etc/.wh..wh..opq", "etc/x", "usr/", "usr/share/",
                                      "usr/share/.wh.doc", "usr/share/.wh.gone", "usr/share/a.txt",
                                      "usr/share/zz/"}));
  for (const char* marker : {"etc/.wh..wh..opq", "usr/share/.wh.doc", "usr/share/.wh.gone"}) {
    const TarEntry& e = Find(entries, marker);
    SCOPED_TRACE(marker);
    EXPECT_EQ(e.type, EntryType::kRegular);
    EXPECT_EQ(e.size, 0);
    EXPECT_EQ(e.mode, 0u);
    EXPECT_EQ(e.uid, 0);
    EXPECT_EQ(e.gid, 0);
    EXPECT_EQ(e.mtime, kMtime);
  }
  EXPECT_TRUE(Find(entries, "etc/").xattrs.empty());
  EXPECT_TRUE(Find(entries, "usr/share/").xattrs.empty());
  EXPECT_EQ(stats.whiteouts, 2u);
  EXPECT_EQ(stats.opaque_dirs, 1u);
  EXPECT_EQ(stats.hardlinks, 0u);

  // Without overlay mode the same tree is taken literally.
  auto plain = ReadTar(TarOf(upper.path()));
  EXPECT_EQ(Paths(plain),
            (std::vector<std::string>{"etc/", "etc/x", "usr/", "usr/share/", "usr/share/a.txt",
                                      "usr/share/doc", "usr/share/gone", "usr/share/zz/"}));
  EXPECT_EQ(Find(plain, "usr/share/doc").type, EntryType::kCharDevice);
  EXPECT_EQ(Find(plain, "usr/share/gone").type, EntryType::kHardlink);
}

TEST(DiffTest, RootlessOpaqueXattrIsHonoured) {
  TempDir upper;
  ASSERT_NO_FATAL_FAILURE(MakeDir(upper / "etc"));
  ASSERT_NO_FATAL_FAILURE(SetXattr(upper / "etc", "user.overlay.opaque", "y"));
  ASSERT_NO_FATAL_FAILURE(SetXattr(upper / "etc", "user.mine", "1"));
  ASSERT_NO_FATAL_FAILURE(WriteFile(upper / "etc/x", "x"));
  DiffOptions overlay;
  overlay.overlay_upper = true;
  auto entries = ReadTar(TarOf(upper.path(), overlay));
  EXPECT_EQ(Paths(entries), (std::vector<std::string>{"etc/", "etc/.wh..wh..opq", "etc/x"}));
  EXPECT_EQ(Find(entries, "etc/").xattrs, (std::map<std::string, std::string>{{"user.mine", "1"}}));
}

void ExpectRedirectError(const std::string& dir, const std::string& where) {
  StringSink sink;
  TarWriter tar(sink);
  DiffOptions overlay;
  overlay.overlay_upper = true;
  auto result = WriteTree(dir, tar, overlay);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::kInternal);
  EXPECT_EQ(result.error().code, "layer.diff.redirect");
  EXPECT_EQ(result.error().message,
            "redirect_dir is used but it's not supported in overlayfs differ");
  EXPECT_EQ(result.error().ToString(),
            "archiving \"" + where +
                "\": redirect_dir is used but it's not supported in overlayfs differ");
}

TEST(DiffTest, OverlayRedirectAndMetacopyFail) {
  if (!IsRoot()) GTEST_SKIP() << "needs root (trusted.overlay.* xattrs)";
  {
    TempDir upper;
    ASSERT_NO_FATAL_FAILURE(MakeDir(upper / "b"));
    ASSERT_NO_FATAL_FAILURE(SetXattr(upper / "b", "trusted.overlay.redirect", "/a"));
    ASSERT_NO_FATAL_FAILURE(ExpectRedirectError(upper.path(), "b"));
    // Outside overlay mode the xattr is just dropped.
    EXPECT_EQ(Paths(ReadTar(TarOf(upper.path()))), std::vector<std::string>{"b/"});
  }
  {
    TempDir upper;
    ASSERT_NO_FATAL_FAILURE(MakeDir(upper / "d"));
    ASSERT_NO_FATAL_FAILURE(WriteFile(upper / "d/f", ""));
    ASSERT_NO_FATAL_FAILURE(SetXattr(upper / "d/f", "trusted.overlay.metacopy", ""));
    ASSERT_NO_FATAL_FAILURE(ExpectRedirectError(upper.path(), "d/f"));
  }
}

TEST(DiffTest, RootlessRedirectFails) {
  TempDir upper;
  ASSERT_NO_FATAL_FAILURE(MakeDir(upper / "b"));
  ASSERT_NO_FATAL_FAILURE(SetXattr(upper / "b", "user.overlay.redirect", "/a"));
  ASSERT_NO_FATAL_FAILURE(ExpectRedirectError(upper.path(), "b"));
}

TEST(DiffTest, MissingDirectoryIsAnError) {
  StringSink sink;
  TarWriter tar(sink);
  auto result = WriteTree(std::string("/nonexistent/manifold"), tar, {});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::kInternal);
  EXPECT_EQ(result.error().code, "layer.diff.io");
  EXPECT_EQ(result.error().message, "open \"/nonexistent/manifold\": No such file or directory");
}

}  // namespace
}  // namespace manifold::layer
