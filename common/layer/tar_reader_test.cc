#include "common/layer/tar_reader.h"

#include <gtest/gtest.h>

#include <archive.h>
#include <archive_entry.h>

#include <string>
#include <vector>

#include "common/layer/compress.h"

namespace manifold::layer {
namespace {

struct FakeEntry {
  std::string path;
  unsigned type = AE_IFREG;
  unsigned mode = 0644;
  std::int64_t uid = 0;
  std::int64_t gid = 0;
  std::string data;
  std::string symlink;
  std::string hardlink;
};

la_ssize_t AppendToString(struct archive*, void* out, const void* buffer, size_t length) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(buffer), length);
  return static_cast<la_ssize_t>(length);
}

// A pax tar written by libarchive's own writer.
std::string WriteTar(const std::vector<FakeEntry>& entries) {
  std::string out;
  struct archive* a = archive_write_new();
  EXPECT_EQ(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
  EXPECT_EQ(archive_write_open(a, &out, nullptr, AppendToString, nullptr), ARCHIVE_OK);
  for (const auto& f : entries) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, f.path.c_str());
    archive_entry_set_filetype(e, f.type);
    archive_entry_set_perm(e, f.mode);
    archive_entry_set_uid(e, f.uid);
    archive_entry_set_gid(e, f.gid);
    archive_entry_set_mtime(e, 0, 0);
    if (!f.symlink.empty()) archive_entry_set_symlink(e, f.symlink.c_str());
    if (!f.hardlink.empty()) archive_entry_set_hardlink(e, f.hardlink.c_str());
    archive_entry_set_size(e, static_cast<la_int64_t>(f.data.size()));
    EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK) << archive_error_string(a);
    if (!f.data.empty()) {
      EXPECT_EQ(archive_write_data(a, f.data.data(), f.data.size()),
                static_cast<la_ssize_t>(f.data.size()));
    }
    archive_entry_free(e);
  }
  EXPECT_EQ(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
  return out;
}

FakeEntry File(std::string path, std::string data, unsigned mode = 0644) {
  FakeEntry e;
  e.path = std::move(path);
  e.data = std::move(data);
  e.mode = mode;
  return e;
}

FakeEntry Special(std::string path, unsigned type, unsigned mode) {
  FakeEntry e;
  e.path = std::move(path);
  e.type = type;
  e.mode = mode;
  return e;
}

FakeEntry Symlink(std::string path, std::string target) {
  FakeEntry e = Special(std::move(path), AE_IFLNK, 0777);
  e.symlink = std::move(target);
  return e;
}

FakeEntry Hardlink(std::string path, std::string target) {
  FakeEntry e = File(std::move(path), "");
  e.hardlink = std::move(target);
  return e;
}

std::vector<FakeEntry> SampleLayer() {
  FakeEntry hosts = File("etc/hosts", "127.0.0.1 localhost\n");
  hosts.uid = 1000;
  hosts.gid = 1001;
  return {
      Special("etc/", AE_IFDIR, 0755),
      hosts,
      Symlink("etc/localtime", "/usr/share/zoneinfo/UTC"),
      Hardlink("etc/hosts.bak", "etc/hosts"),
      File("usr/bin/su", std::string(100000, 'x'), 04755),
      Special("run/ctl", AE_IFIFO, 0600),
  };
}

std::string ReadAllData(TarReader& reader) {
  std::string out;
  char buf[333];
  for (;;) {
    auto n = reader.ReadData(buf);
    EXPECT_TRUE(n.ok());
    if (!n.ok() || *n == 0) return out;
    out.append(buf, *n);
  }
}

TEST(TarReaderTest, ReadsEntriesWrittenByLibarchive) {
  std::string tar = WriteTar(SampleLayer());
  StringSource source(tar, 1000);
  auto reader = TarReader::Open(source);
  ASSERT_TRUE(reader.ok()) << reader.error().ToString();

  std::vector<TarEntry> seen;
  std::string hosts_data;
  for (;;) {
    auto next = (*reader)->Next();
    ASSERT_TRUE(next.ok()) << next.error().ToString();
    if (!*next) break;
    if ((*next)->path == "etc/hosts") hosts_data = ReadAllData(**reader);
    seen.push_back(**next);  // unread data (usr/bin/su) is skipped by Next()
  }
  ASSERT_EQ(seen.size(), 6u);
  EXPECT_EQ(seen[0].path, "etc/");
  EXPECT_EQ(seen[0].type, EntryType::kDirectory);
  EXPECT_EQ(seen[0].mode, 0755u);
  EXPECT_EQ(seen[1].type, EntryType::kRegular);
  EXPECT_EQ(seen[1].size, 20);
  EXPECT_EQ(seen[1].uid, 1000);
  EXPECT_EQ(seen[1].gid, 1001);
  EXPECT_EQ(hosts_data, "127.0.0.1 localhost\n");
  EXPECT_EQ(seen[2].type, EntryType::kSymlink);
  EXPECT_EQ(seen[2].linkname, "/usr/share/zoneinfo/UTC");
  EXPECT_EQ(seen[3].type, EntryType::kHardlink);
  EXPECT_EQ(seen[3].linkname, "etc/hosts");
  EXPECT_EQ(seen[4].mode, 04755u);
  EXPECT_EQ(seen[4].size, 100000);
  EXPECT_EQ(seen[5].type, EntryType::kFifo);
}

TEST(TarReaderTest, ReadsThroughAutoDecompression) {
  std::string tar = WriteTar(SampleLayer());
  for (Compression c : {Compression::kGzip, Compression::kZstd}) {
    StringSink packed;
    auto compressor = NewCompressor(c, packed);
    ASSERT_TRUE(compressor.ok());
    ASSERT_TRUE((*compressor)->Write(tar).ok());
    ASSERT_TRUE((*compressor)->Finish().ok());

    StringSource blob(packed.data());
    auto decompressor = NewAutoDecompressor(blob);
    ASSERT_TRUE(decompressor.ok());
    auto reader = TarReader::Open(**decompressor);
    ASSERT_TRUE(reader.ok());
    int count = 0;
    for (;;) {
      auto next = (*reader)->Next();
      ASSERT_TRUE(next.ok()) << next.error().ToString();
      if (!*next) break;
      if ((*next)->path == "usr/bin/su") {
        EXPECT_EQ(ReadAllData(**reader), std::string(100000, 'x'));
      }
      ++count;
    }
    EXPECT_EQ(count, 6) << CompressionName(c);
  }
}

TEST(TarReaderTest, EnforcesEntryLimit) {
  std::string tar = WriteTar(SampleLayer());
  StringSource source(tar);
  TarLimits limits;
  limits.max_entries = 3;
  auto reader = TarReader::Open(source, limits);
  ASSERT_TRUE(reader.ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*reader)->Next().ok());
  auto fourth = (*reader)->Next();
  ASSERT_FALSE(fourth.ok());
  EXPECT_EQ(fourth.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(fourth.error().code, "layer.limit.entries");
  EXPECT_EQ(fourth.error().message, "layer has more than 3 entries");
}

TEST(TarReaderTest, EnforcesNameLimits) {
  const std::string long_name = std::string(150, 'd') + "/" + std::string(49, 'f');  // 200 bytes
  TarLimits limits;
  limits.max_name_bytes = 100;
  {
    std::string tar = WriteTar({File(long_name, "x")});
    StringSource source(tar);
    auto reader = TarReader::Open(source, limits);
    ASSERT_TRUE(reader.ok());
    auto next = (*reader)->Next();
    ASSERT_FALSE(next.ok());
    EXPECT_EQ(next.error().kind, ErrorKind::kSecurity);
    EXPECT_EQ(next.error().code, "layer.limit.name");
    EXPECT_EQ(next.error().message, "entry name is 200 bytes, limit is 100");
  }
  {
    std::string tar = WriteTar({Symlink("l", long_name)});
    StringSource source(tar);
    auto reader = TarReader::Open(source, limits);
    ASSERT_TRUE(reader.ok());
    auto next = (*reader)->Next();
    ASSERT_FALSE(next.ok());
    EXPECT_EQ(next.error().code, "layer.limit.name");
    EXPECT_EQ(next.error().message, "link target is 200 bytes, limit is 100");
  }
}

TEST(TarReaderTest, EmptyStreamHasNoEntries) {
  StringSource source("");
  auto reader = TarReader::Open(source);
  ASSERT_TRUE(reader.ok()) << reader.error().ToString();
  auto next = (*reader)->Next();
  ASSERT_TRUE(next.ok()) << next.error().ToString();
  EXPECT_FALSE(next->has_value());
}

TEST(TarReaderTest, RejectsGarbageAndTruncation) {
  std::string garbage(2048, 'x');
  StringSource g(garbage);
  auto reader = TarReader::Open(g);  // libarchive sniffs the format on open
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(reader.error().code, "layer.tar.malformed");
  EXPECT_EQ(reader.error().message, "opening tar stream: Unrecognized archive format");

  std::string tar = WriteTar(SampleLayer());
  std::string cut = tar.substr(0, 3000);  // inside usr/bin/su's data at the latest
  StringSource t(cut);
  auto truncated = TarReader::Open(t);
  ASSERT_TRUE(truncated.ok());
  Error last_error;
  bool failed = false;
  for (int i = 0; i < 10 && !failed; ++i) {
    auto entry = (*truncated)->Next();
    if (!entry.ok()) {
      failed = true;
      last_error = entry.error();
    } else if (!*entry) {
      break;
    }
  }
  ASSERT_TRUE(failed) << "truncated tar read to a clean end";
  EXPECT_EQ(last_error.code, "layer.tar.malformed");
  EXPECT_EQ(last_error.message, "reading tar header: Truncated tar archive");
}

class FailingSource : public ByteSource {
 public:
  Expected<std::size_t> Read(std::span<char>) override {
    return MakeError(ErrorKind::kDisconnected, "test.peer_gone", "peer went away");
  }
};

TEST(TarReaderTest, SourceErrorsKeepTheirKind) {
  FailingSource source;
  auto reader = TarReader::Open(source);
  Error error = reader.ok() ? (*reader)->Next().error() : reader.error();
  EXPECT_EQ(error.kind, ErrorKind::kDisconnected);
  EXPECT_EQ(error.code, "test.peer_gone");
}

TEST(TarReaderTest, ReportsTimesDevicesAndHeaderBytes) {
  std::string out;
  struct archive* a = archive_write_new();
  ASSERT_EQ(archive_write_set_format_pax(a), ARCHIVE_OK);
  ASSERT_EQ(archive_write_open(a, &out, nullptr, AppendToString, nullptr), ARCHIVE_OK);
  struct archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, "dev/big");
  archive_entry_set_filetype(e, AE_IFCHR);
  archive_entry_set_perm(e, 0600);
  archive_entry_set_mtime(e, 1600000000, 250);
  archive_entry_set_atime(e, 1500000000, 7);
  archive_entry_set_rdevmajor(e, static_cast<dev_t>(1) << 40);  // beyond dev_t's kernel range
  archive_entry_set_rdevminor(e, 3);
  ASSERT_EQ(archive_write_header(a, e), ARCHIVE_OK) << archive_error_string(a);
  archive_entry_free(e);
  ASSERT_EQ(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);

  StringSource source(out);
  auto reader = TarReader::Open(source);
  ASSERT_TRUE(reader.ok());
  auto next = (*reader)->Next();
  ASSERT_TRUE(next.ok()) << next.error().ToString();
  ASSERT_TRUE(next->has_value());
  const TarEntry& entry = **next;
  EXPECT_EQ(entry.mtime, 1600000000);
  EXPECT_EQ(entry.mtime_nsec, 250);
  ASSERT_TRUE(entry.atime.has_value());
  EXPECT_EQ(entry.atime->sec, 1500000000);
  EXPECT_EQ(entry.devmajor, std::uint64_t{1} << 40);  // not truncated: Apply range-checks it
  EXPECT_EQ(entry.devminor, 3u);
  EXPECT_GT(entry.header_bytes, 512u);  // a pax header came first
  auto end = (*reader)->Next();
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(end->has_value());
  EXPECT_EQ((*reader)->consumed_bytes() % 512, 0u);
}

TEST(TarReaderTest, RejectsDamagedHeader) {
  std::string tar = WriteTar({File("a", "a"), File("b", "b")});
  for (std::size_t off = 0; off < tar.size(); off += 512) {
    if (tar.compare(off, 2, std::string("b\0", 2)) == 0) tar[off] = 'c';  // checksum now wrong
  }
  StringSource source(tar);
  auto reader = TarReader::Open(source);
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE((*reader)->Next().ok());
  auto damaged = (*reader)->Next();  // libarchive says ARCHIVE_RETRY: not an entry
  ASSERT_FALSE(damaged.ok());
  EXPECT_EQ(damaged.error().code, "layer.tar.malformed");
  EXPECT_EQ(damaged.error().message, "reading tar header: Damaged tar archive");
}

TEST(TarReaderTest, EnforcesPaxLimit) {
  std::string tar;
  {
    struct archive* a = archive_write_new();
    ASSERT_EQ(archive_write_set_format_pax(a), ARCHIVE_OK);
    ASSERT_EQ(archive_write_open(a, &tar, nullptr, AppendToString, nullptr), ARCHIVE_OK);
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, "f");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    std::string value(20000, 'v');
    archive_entry_xattr_add_entry(e, "user.big", value.data(), value.size());
    ASSERT_EQ(archive_write_header(a, e), ARCHIVE_OK);
    archive_entry_free(e);
    ASSERT_EQ(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
  }
  TarLimits limits;
  limits.max_pax_bytes = 8192;
  StringSource source(tar);
  auto reader = TarReader::Open(source, limits);
  ASSERT_TRUE(reader.ok());
  auto next = (*reader)->Next();
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(next.error().code, "layer.limit.pax");

  // Past libarchive's own 1 MiB cap on one extension header.
  std::string huge = WriteTar({File(std::string(1 << 20, 'n'), "x")});
  StringSource huge_source(huge);
  auto huge_reader = TarReader::Open(huge_source);
  ASSERT_TRUE(huge_reader.ok());
  auto refused = (*huge_reader)->Next();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "layer.limit.pax");
  EXPECT_EQ(refused.error().message, "extended header refused: Special header too large");
}

}  // namespace
}  // namespace manifold::layer
