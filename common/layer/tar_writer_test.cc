#include "common/layer/tar_writer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/layer/tar_reader.h"

namespace manifold::layer {
namespace {

struct ReadEntry {
  TarEntry entry;
  std::string data;
};

std::vector<ReadEntry> ReadBack(const std::string& tar) {
  std::vector<ReadEntry> out;
  StringSource source(tar, 700);
  auto reader = TarReader::Open(source);
  EXPECT_TRUE(reader.ok()) << reader.error().ToString();
  if (!reader.ok()) return out;
  for (;;) {
    auto next = (*reader)->Next();
    EXPECT_TRUE(next.ok()) << next.error().ToString();
    if (!next.ok() || !*next) return out;
    ReadEntry e{**next, ""};
    char buf[4096];
    for (;;) {
      auto n = (*reader)->ReadData(buf);
      EXPECT_TRUE(n.ok());
      if (!n.ok() || *n == 0) break;
      e.data.append(buf, *n);
    }
    out.push_back(std::move(e));
  }
}

std::string Field(const std::string& block, std::size_t offset, std::size_t width) {
  return block.substr(offset, width);
}

TarHeader File(std::string path, std::uint64_t size, std::uint32_t mode = 0644) {
  TarHeader h;
  h.path = std::move(path);
  h.type = EntryType::kRegular;
  h.mode = mode;
  h.size = size;
  return h;
}

std::string Write(const std::vector<std::pair<TarHeader, std::string>>& entries) {
  StringSink sink;
  TarWriter tar(sink);
  for (const auto& [h, data] : entries) {
    EXPECT_TRUE(tar.WriteHeader(h).ok());
    EXPECT_TRUE(tar.WriteData(data).ok());
  }
  EXPECT_TRUE(tar.Finish().ok());
  EXPECT_EQ(tar.bytes_written(), sink.data().size());
  return sink.data();
}

// Only the blocks WriteHeader() produced (pax header, if any, + ustar header).
std::string HeaderBytes(const TarHeader& h) {
  StringSink sink;
  TarWriter tar(sink);
  auto ok = tar.WriteHeader(h);
  EXPECT_TRUE(ok.ok()) << ok.error().ToString();
  return sink.data();
}

TEST(TarWriterTest, EmptyArchiveIsTwoZeroBlocks) {
  StringSink sink;
  TarWriter tar(sink);
  ASSERT_TRUE(tar.Finish().ok());
  EXPECT_EQ(sink.data(), std::string(1024, '\0'));
}

TEST(TarWriterTest, UstarHeaderFieldsAreFixedWidthOctal) {
  TarHeader h = File("hello.txt", 3);
  h.uid = 1000;
  h.gid = 1001;
  h.mtime = 1700000000;
  std::string tar = Write({{h, "hi\n"}});
  ASSERT_EQ(tar.size(), 512u + 512u + 1024u);
  std::string b = tar.substr(0, 512);
  EXPECT_EQ(Field(b, 0, 100), "hello.txt" + std::string(91, '\0'));
  EXPECT_EQ(Field(b, 100, 8), std::string("0000644\0", 8));
  EXPECT_EQ(Field(b, 108, 8), std::string("0001750\0", 8));
  EXPECT_EQ(Field(b, 116, 8), std::string("0001751\0", 8));
  EXPECT_EQ(Field(b, 124, 12), std::string("00000000003\0", 12));
  EXPECT_EQ(Field(b, 136, 12), std::string("14524770400\0", 12));
  EXPECT_EQ(b[156], '0');
  EXPECT_EQ(Field(b, 157, 100), std::string(100, '\0'));
  EXPECT_EQ(Field(b, 257, 8), std::string("ustar\0"
                                          "00",
                                          8));
  EXPECT_EQ(Field(b, 265, 64), std::string(64, '\0'));  // uname, gname
  EXPECT_EQ(Field(b, 329, 16), std::string("0000000\0"
                                           "0000000\0",
                                           16));
  EXPECT_EQ(Field(b, 345, 167), std::string(167, '\0'));  // prefix + pad
  // Checksum: 6 octal digits, NUL, space; sum taken with the field as spaces.
  std::string blanked = b;
  blanked.replace(148, 8, 8, ' ');
  unsigned sum = 0;
  for (char c : blanked) sum += static_cast<unsigned char>(c);
  char expect[8];
  std::snprintf(expect, sizeof expect, "%06o", sum);
  EXPECT_EQ(Field(b, 148, 8), std::string(expect, 6) + std::string("\0 ", 2));
  EXPECT_EQ(tar.substr(512, 3), "hi\n");
  EXPECT_EQ(tar.substr(515), std::string(509 + 1024, '\0'));
}

TEST(TarWriterTest, OutputDoesNotDependOnWriteChunking) {
  std::string data(5000, 'z');
  std::string whole = Write({{File("f", data.size()), data}});
  StringSink sink;
  TarWriter tar(sink);
  ASSERT_TRUE(tar.WriteHeader(File("f", data.size())).ok());
  for (char c : data) ASSERT_TRUE(tar.WriteData(std::string_view(&c, 1)).ok());
  ASSERT_TRUE(tar.Finish().ok());
  EXPECT_EQ(sink.data(), whole);
}

TEST(TarWriterTest, NamesUpTo100BytesNeedNoPax) {
  std::string name(100, 'n');
  std::string bytes = HeaderBytes(File(name, 0));
  ASSERT_EQ(bytes.size(), 512u);
  EXPECT_EQ(bytes.substr(0, 100), name);
}

TEST(TarWriterTest, LongPathGoesToPaxRecord) {
  std::string path = std::string(60, 'd') + "/" + std::string(89, 'f');  // 150 bytes
  std::string bytes = HeaderBytes(File(path, 0));
  ASSERT_EQ(bytes.size(), 3 * 512u);
  // The pax header entry: fixed name rule, mode 0644, owner 0, mtime 0.
  EXPECT_EQ(bytes.substr(0, 100), "PaxHeaders/" + std::string(89, 'f'));
  EXPECT_EQ(bytes[156], 'x');
  EXPECT_EQ(Field(bytes, 100, 8), std::string("0000644\0", 8));
  EXPECT_EQ(Field(bytes, 136, 12), std::string("00000000000\0", 12));
  std::string record = "160 path=" + path + "\n";
  ASSERT_EQ(record.size(), 160u);
  EXPECT_EQ(Field(bytes, 124, 12), std::string("00000000240\0", 12));
  EXPECT_EQ(bytes.substr(512, 160), record);
  EXPECT_EQ(bytes.substr(512 + 160, 512 - 160), std::string(352, '\0'));
  // The ustar name keeps the first 100 bytes.
  EXPECT_EQ(bytes.substr(1024, 100), path.substr(0, 100));
  EXPECT_EQ(bytes[1024 + 156], '0');
}

TEST(TarWriterTest, PaxHeaderNameIsPrintableAndCut) {
  TarHeader h = File("dir/" + std::string(200, 'a'), 0);
  EXPECT_EQ(HeaderBytes(h).substr(0, 100), "PaxHeaders/" + std::string(89, 'a'));
  h = File(std::string(120, 'b') + "/caf\xc3\xa9/", 0);
  h.type = EntryType::kDirectory;
  EXPECT_EQ(HeaderBytes(h).substr(0, 20), std::string("PaxHeaders/caf__\0\0\0\0", 20));
}

TEST(TarWriterTest, PaxRecordLengthCountsItsOwnDigits) {
  // " SCHILY.xattr.user.a=" + value + "\n" is 22 + value bytes: 97 -> "99 ...",
  // 98 -> 2 digits would make 100, so 3 digits and 101.
  for (auto [value_len, prefix] : {std::pair<std::size_t, std::string>{75, "99 "},
                                   std::pair<std::size_t, std::string>{76, "101 "}}) {
    TarHeader h = File("f", 0);
    h.xattrs["user.a"] = std::string(value_len, 'v');
    std::string bytes = HeaderBytes(h);
    std::string record = prefix + "SCHILY.xattr.user.a=" + std::string(value_len, 'v') + "\n";
    EXPECT_EQ(std::to_string(record.size()) + " ", prefix);
    EXPECT_EQ(bytes.substr(512, record.size()), record);
  }
}

TEST(TarWriterTest, SizesFrom8GiBUsePax) {
  const std::uint64_t k8GiB = std::uint64_t{8} << 30;
  std::string below = HeaderBytes(File("f", k8GiB - 1));
  ASSERT_EQ(below.size(), 512u);
  EXPECT_EQ(Field(below, 124, 12), std::string("77777777777\0", 12));

  std::string at = HeaderBytes(File("f", k8GiB));
  ASSERT_EQ(at.size(), 3 * 512u);
  EXPECT_EQ(at.substr(512, 20), std::string("19 size=8589934592\n\0", 20));
  EXPECT_EQ(Field(at, 1024 + 124, 12), std::string("00000000000\0", 12));
}

TEST(TarWriterTest, LargeOwnersAndOddTimesUsePax) {
  TarHeader h = File("f", 0);
  h.uid = 2097152;  // 010000000: one more than 7 octal digits hold
  h.gid = 2097151;  // 07777777 fits
  h.mtime = -1;
  std::string bytes = HeaderBytes(h);
  ASSERT_EQ(bytes.size(), 3 * 512u);
  EXPECT_EQ(bytes.substr(512, 28), std::string("12 mtime=-1\n15 uid=2097152\n\0", 28));
  EXPECT_EQ(Field(bytes, 1024 + 108, 8), std::string("0000000\0", 8));
  EXPECT_EQ(Field(bytes, 1024 + 116, 8), std::string("7777777\0", 8));
  EXPECT_EQ(Field(bytes, 1024 + 136, 12), std::string("00000000000\0", 12));

  auto back = ReadBack(Write({{h, ""}}));
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].entry.uid, 2097152);
  EXPECT_EQ(back[0].entry.gid, 2097151);
  EXPECT_EQ(back[0].entry.mtime, -1);
}

TEST(TarWriterTest, XattrsAreSortedByName) {
  TarHeader h = File("f", 0);
  h.xattrs["user.b"] = "2";
  h.xattrs["security.capability"] = std::string("\x01\0\0\x02", 4);
  h.xattrs["user.a"] = "1";
  std::string bytes = HeaderBytes(h);
  std::string expect = std::string("41 SCHILY.xattr.security.capability=\x01\0\0\x02\n", 41) +
                       "25 SCHILY.xattr.user.a=1\n" + "25 SCHILY.xattr.user.b=2\n";
  EXPECT_EQ(bytes.substr(512, expect.size()), expect);

  auto back = ReadBack(Write({{h, ""}}));
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].entry.xattrs, h.xattrs);
}

TEST(TarWriterTest, NonUtf8LongPathIsMarkedBinary) {
  std::string path = std::string(110, 'p') + "\xff\xfe";
  std::string bytes = HeaderBytes(File(path, 0));
  EXPECT_EQ(bytes.substr(512, 21), "21 hdrcharset=BINARY\n");
  auto back = ReadBack(Write({{File(path, 0), ""}}));
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].entry.path, path);
}

TEST(TarWriterTest, EveryEntryTypeRoundTripsThroughLibarchive) {
  std::vector<std::pair<TarHeader, std::string>> in;
  TarHeader dir;
  dir.path = "d/";
  dir.type = EntryType::kDirectory;
  dir.mode = 01777;
  dir.mtime = 1234567890;
  in.push_back({dir, ""});
  TarHeader file = File("d/" + std::string(200, 'f'), 11, 04755);
  file.uid = 3000000;
  file.gid = 42;
  file.xattrs["user.foo"] = "bar";
  in.push_back({file, "hello world"});
  TarHeader link;
  link.path = "d/hard";
  link.type = EntryType::kHardlink;
  link.linkname = file.path;  // > 100 bytes: pax linkpath
  in.push_back({link, ""});
  TarHeader sym;
  sym.path = "d/sym";
  sym.type = EntryType::kSymlink;
  sym.mode = 0777;
  sym.linkname = "/etc/passwd";
  in.push_back({sym, ""});
  TarHeader chr;
  chr.path = "d/null";
  chr.type = EntryType::kCharDevice;
  chr.mode = 0666;
  chr.devmajor = 1;
  chr.devminor = 3;
  in.push_back({chr, ""});
  TarHeader blk = chr;
  blk.path = "d/big";
  blk.type = EntryType::kBlockDevice;
  blk.devmajor = 259;
  blk.devminor = 3000000;  // > 07777777: SCHILY.devminor
  in.push_back({blk, ""});
  TarHeader fifo;
  fifo.path = "d/fifo";
  fifo.type = EntryType::kFifo;
  fifo.mode = 0600;
  in.push_back({fifo, ""});

  std::string tar = Write(in);
  EXPECT_EQ(tar, Write(in));
  auto back = ReadBack(tar);
  ASSERT_EQ(back.size(), in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const TarHeader& h = in[i].first;
    const TarEntry& e = back[i].entry;
    SCOPED_TRACE(h.path);
    EXPECT_EQ(e.path, h.path);
    EXPECT_EQ(e.type, h.type);
    EXPECT_EQ(e.mode, h.mode);
    EXPECT_EQ(e.uid, h.uid);
    EXPECT_EQ(e.gid, h.gid);
    EXPECT_EQ(e.mtime, h.mtime);
    EXPECT_EQ(e.linkname, h.linkname);
    EXPECT_EQ(e.devmajor, h.devmajor);
    EXPECT_EQ(e.devminor, h.devminor);
    EXPECT_EQ(e.xattrs, h.xattrs);
    EXPECT_EQ(back[i].data, in[i].second);
  }
}

TEST(TarWriterTest, GnuTarListsEntries) {
  TarHeader dir;
  dir.path = "d/";
  dir.type = EntryType::kDirectory;
  dir.mode = 0755;
  TarHeader file = File("d/" + std::string(150, 'f'), 2, 04755);
  file.uid = 1000;
  file.gid = 1000;
  file.mtime = 86400;
  TarHeader sym;
  sym.path = "d/sym";
  sym.type = EntryType::kSymlink;
  sym.mode = 0777;
  sym.linkname = "/etc/passwd";
  std::string tar = Write({{dir, ""}, {file, "ok"}, {sym, ""}});

  char tmpl[] = "/tmp/tar_writer_test_XXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, tar.data(), tar.size()), static_cast<ssize_t>(tar.size()));
  close(fd);
  std::string cmd = std::string("TZ=UTC tar --numeric-owner -tvf ") + tmpl + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  while (std::size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << out;
  unlink(tmpl);

  std::vector<std::vector<std::string>> lines;
  std::istringstream lines_in(out);
  for (std::string line; std::getline(lines_in, line);) {
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string s; words >> s;) w.push_back(s);
    lines.push_back(w);
  }
  ASSERT_EQ(lines.size(), 3u) << out;
  EXPECT_EQ(lines[0],
            (std::vector<std::string>{"drwxr-xr-x", "0/0", "0", "1970-01-01", "00:00", "d/"}));
  EXPECT_EQ(lines[1], (std::vector<std::string>{"-rwsr-xr-x", "1000/1000", "2", "1970-01-02",
                                                "00:00", file.path}));
  EXPECT_EQ(lines[2], (std::vector<std::string>{"lrwxrwxrwx", "0/0", "0", "1970-01-01", "00:00",
                                                "d/sym", "->", "/etc/passwd"}));
}

TEST(TarWriterTest, RejectsBadHeaders) {
  struct Case {
    TarHeader header;
    std::string message;
  };
  TarHeader nul = File(std::string("a\0b", 3), 0);
  TarHeader sock = File("s", 0);
  sock.type = EntryType::kSocket;
  TarHeader dir_data = File("d/", 5);
  dir_data.type = EntryType::kDirectory;
  TarHeader xattr = File("x", 0);
  xattr.xattrs["user.a=b"] = "v";
  TarHeader mode = File("m", 0, 010000);
  std::vector<Case> cases = {
      {File("", 0), "tar entry \"\": empty path"},
      {nul, "tar entry \"a\\x00b\": NUL in path"},
      {sock, "tar entry \"s\": sockets cannot be archived"},
      {dir_data, "tar entry \"d/\": only regular files carry data"},
      {xattr, "tar entry \"x\": xattr name \"user.a=b\" is empty or holds '=' or NUL"},
      {mode, "tar entry \"m\": mode has bits above 07777"},
  };
  for (const auto& c : cases) {
    StringSink sink;
    TarWriter tar(sink);
    auto r = tar.WriteHeader(c.header);
    ASSERT_FALSE(r.ok()) << c.message;
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalidInput);
    EXPECT_EQ(r.error().code, "layer.tar.header");
    EXPECT_EQ(r.error().message, c.message);
    EXPECT_TRUE(sink.data().empty());
  }
}

TEST(TarWriterTest, DataMustMatchTheHeaderSize) {
  StringSink sink;
  TarWriter tar(sink);
  ASSERT_TRUE(tar.WriteHeader(File("f", 4)).ok());
  auto excess = tar.WriteData("12345");
  ASSERT_FALSE(excess.ok());
  EXPECT_EQ(excess.error().kind, ErrorKind::kInternal);
  EXPECT_EQ(excess.error().code, "layer.tar.excess_data");
  EXPECT_EQ(excess.error().message, "tar entry \"f\" is 4 bytes but more data was written");
  ASSERT_TRUE(tar.WriteData("12").ok());
  auto next = tar.WriteHeader(File("g", 0));
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.error().code, "layer.tar.short_data");
  EXPECT_EQ(next.error().message, "tar entry \"f\" got 2 of 4 data bytes");
  auto finish = tar.Finish();
  ASSERT_FALSE(finish.ok());
  EXPECT_EQ(finish.error().kind, ErrorKind::kInternal);
  EXPECT_EQ(finish.error().code, "layer.tar.short_data");
}

}  // namespace
}  // namespace manifold::layer
