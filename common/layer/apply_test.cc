#include "common/layer/apply.h"

#include <gtest/gtest.h>

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/fs/root_dir.h"
#include "common/layer/compress.h"

namespace manifold::layer {
namespace {

// ---------------------------------------------------------------------------
// Tar builder: libarchive's pax writer into memory.

constexpr std::int64_t kMtime = 1600000000;

struct E {
  std::string path;
  unsigned type = AE_IFREG;
  unsigned mode = 0644;
  std::int64_t uid = 0;
  std::int64_t gid = 0;
  std::string data;
  std::string symlink;
  std::string hardlink;
  std::uint64_t devmajor = 0;
  std::uint64_t devminor = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
  std::int64_t mtime = kMtime;
  long mtime_nsec = 0;
  bool acl = false;  // adds a POSIX access ACL
  std::int64_t sparse_size = 0;  // > 0: a sparse file this big, `data` stored at its end
};

E F(std::string path, std::string data = "", unsigned mode = 0644) {
  E e;
  e.path = std::move(path);
  e.data = std::move(data);
  e.mode = mode;
  return e;
}
E D(std::string path, unsigned mode = 0755) {
  E e;
  e.path = std::move(path);
  e.type = AE_IFDIR;
  e.mode = mode;
  return e;
}
E L(std::string path, std::string target) {
  E e;
  e.path = std::move(path);
  e.type = AE_IFLNK;
  e.mode = 0777;
  e.symlink = std::move(target);
  return e;
}
E H(std::string path, std::string target) {
  E e;
  e.path = std::move(path);
  e.hardlink = std::move(target);
  return e;
}
E Dev(std::string path, unsigned type, std::uint64_t major, std::uint64_t minor,
      unsigned mode = 0666) {
  E e;
  e.path = std::move(path);
  e.type = type;
  e.mode = mode;
  e.devmajor = major;
  e.devminor = minor;
  return e;
}
E With(E e, std::string key, std::string value) {
  e.xattrs.emplace_back(std::move(key), std::move(value));
  return e;
}

la_ssize_t AppendToString(struct archive*, void* out, const void* buffer, size_t length) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(buffer), length);
  return static_cast<la_ssize_t>(length);
}

std::string Tar(const std::vector<E>& entries) {
  std::string out;
  struct archive* a = archive_write_new();
  EXPECT_EQ(archive_write_set_format_pax(a), ARCHIVE_OK);
  EXPECT_EQ(archive_write_set_bytes_per_block(a, 512), ARCHIVE_OK);
  EXPECT_EQ(archive_write_open(a, &out, nullptr, AppendToString, nullptr), ARCHIVE_OK);
  for (const auto& f : entries) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, f.path.c_str());
    archive_entry_set_filetype(e, f.type);
    archive_entry_set_perm(e, f.mode);
    archive_entry_set_uid(e, f.uid);
    archive_entry_set_gid(e, f.gid);
    archive_entry_set_mtime(e, f.mtime, f.mtime_nsec);
    if (!f.symlink.empty()) archive_entry_set_symlink(e, f.symlink.c_str());
    if (!f.hardlink.empty()) archive_entry_set_hardlink(e, f.hardlink.c_str());
    if (f.type == AE_IFCHR || f.type == AE_IFBLK) {
      archive_entry_set_rdevmajor(e, static_cast<dev_t>(f.devmajor));
      archive_entry_set_rdevminor(e, static_cast<dev_t>(f.devminor));
    }
    for (const auto& [k, v] : f.xattrs) archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
    if (f.acl) {
      archive_entry_acl_add_entry(e, ARCHIVE_ENTRY_ACL_TYPE_ACCESS, ARCHIVE_ENTRY_ACL_READ,
                                  ARCHIVE_ENTRY_ACL_USER, 1234, "evil");
    }
    archive_entry_set_size(e, static_cast<la_int64_t>(f.data.size()));
    if (f.sparse_size > 0) {
      archive_entry_set_size(e, f.sparse_size);
      archive_entry_sparse_add_entry(e, f.sparse_size - static_cast<la_int64_t>(f.data.size()),
                                     static_cast<la_int64_t>(f.data.size()));
    }
    EXPECT_GE(archive_write_header(a, e), ARCHIVE_WARN) << archive_error_string(a);
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

std::string Compress(const std::string& data, Compression c) {
  StringSink sink;
  auto compressor = NewCompressor(c, sink);
  EXPECT_TRUE(compressor.ok());
  EXPECT_TRUE((*compressor)->Write(data).ok());
  EXPECT_TRUE((*compressor)->Finish().ok());
  return sink.data();
}

// A raw ustar header, for what libarchive will not write. Sizes past the
// octal field use the GNU base-256 form.
std::string UstarHeader(const std::string& name, char typeflag, std::uint64_t size) {
  std::string h(512, '\0');
  std::memcpy(h.data(), name.data(), std::min<std::size_t>(name.size(), 100));
  std::memcpy(h.data() + 100, "0000644", 7);
  std::memcpy(h.data() + 108, "0000000", 7);
  std::memcpy(h.data() + 116, "0000000", 7);
  if (size < (std::uint64_t{1} << 33)) {
    std::snprintf(h.data() + 124, 12, "%011llo", static_cast<unsigned long long>(size));
  } else {
    h[124] = static_cast<char>(0x80);
    for (int i = 0; i < 8; ++i) h[135 - i] = static_cast<char>((size >> (8 * i)) & 0xff);
  }
  std::memcpy(h.data() + 136, "00000000000", 11);
  std::memset(h.data() + 148, ' ', 8);
  h[156] = typeflag;
  std::memcpy(h.data() + 257, "ustar", 6);
  std::memcpy(h.data() + 263, "00", 2);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(h.data() + 148, 8, "%06o", sum);
  h[155] = ' ';
  return h;
}

const std::string kEnd(1024, '\0');

// Yields `head`, then `count` copies of `fill`, then `tail`, without holding
// the middle in memory.
class GeneratedSource : public ByteSource {
 public:
  GeneratedSource(std::string head, std::uint64_t count, char fill, std::string tail = "")
      : head_(std::move(head)), tail_(std::move(tail)), count_(count), fill_(fill) {}
  Expected<std::size_t> Read(std::span<char> buffer) override {
    if (pos_ < head_.size()) return Copy(buffer, head_, pos_);
    if (generated_ < count_) {
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), count_ - generated_));
      std::memset(buffer.data(), fill_, n);
      generated_ += n;
      return n;
    }
    return Copy(buffer, tail_, tail_pos_);
  }
  std::uint64_t produced() const { return pos_ + generated_ + tail_pos_; }

 private:
  static std::size_t Copy(std::span<char> buffer, const std::string& s, std::size_t& pos) {
    std::size_t n = std::min(buffer.size(), s.size() - pos);
    std::memcpy(buffer.data(), s.data() + pos, n);
    pos += n;
    return n;
  }
  std::string head_, tail_;
  std::size_t pos_ = 0, tail_pos_ = 0;
  std::uint64_t count_, generated_ = 0;
  char fill_;
};

// A gzip stream of `zeros` zero bytes, compressed on demand as it is read.
class GzipBombSource : public ByteSource, private ByteSink {
 public:
  explicit GzipBombSource(std::uint64_t zeros) : remaining_(zeros) {
    compressor_ = std::move(NewCompressor(Compression::kGzip, *this).value());
  }
  Expected<std::size_t> Read(std::span<char> buffer) override {
    while (pending_.size() - pos_ == 0 && !finished_) {
      pending_.clear();
      pos_ = 0;
      if (remaining_ == 0) {
        MF_TRY_VOID(compressor_->Finish());
        finished_ = true;
        break;
      }
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, zeros_.size()));
      MF_TRY_VOID(compressor_->Write(std::string_view(zeros_.data(), n)));
      remaining_ -= n;
      fed_ += n;
    }
    std::size_t n = std::min(buffer.size(), pending_.size() - pos_);
    std::memcpy(buffer.data(), pending_.data() + pos_, n);
    pos_ += n;
    compressed_ += n;
    return n;
  }
  std::uint64_t fed() const { return fed_; }
  std::uint64_t compressed() const { return compressed_; }

 private:
  Expected<void> Write(std::string_view data) override {
    pending_.append(data);
    return Ok();
  }
  std::unique_ptr<Compressor> compressor_;
  std::string zeros_ = std::string(1 << 20, '\0');
  std::string pending_;
  std::size_t pos_ = 0;
  std::uint64_t remaining_;
  std::uint64_t fed_ = 0, compressed_ = 0;
  bool finished_ = false;
};

// ---------------------------------------------------------------------------
// Host-side checks (tests may join strings; the code under test never does).

std::string ReadHost(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<struct stat> LstatHost(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return std::nullopt;
  return st;
}

std::string ReadLink(const std::string& path) {
  char buf[4096];
  ssize_t n = readlink(path.c_str(), buf, sizeof buf);
  return n < 0 ? std::string() : std::string(buf, static_cast<std::size_t>(n));
}

std::string XattrHost(const std::string& path, const std::string& key) {
  char buf[256];
  ssize_t n = lgetxattr(path.c_str(), key.c_str(), buf, sizeof buf);
  return n < 0 ? "<none>" : std::string(buf, static_cast<std::size_t>(n));
}

// Everything observable about a tree: inode, mode, owner, size, times, content.
using Snapshot = std::map<std::string, std::string>;

std::string Describe(const std::string& path, const struct stat& st, bool with_mtime) {
  std::ostringstream os;
  os << "ino=" << st.st_ino << " mode=" << std::oct << st.st_mode << std::dec
     << " uid=" << st.st_uid << " gid=" << st.st_gid;
  // A directory's link count and size change whenever anyone (a test running
  // in parallel) adds a subdirectory to it, as they do in /tmp: only files'.
  if (!S_ISDIR(st.st_mode)) os << " nlink=" << st.st_nlink << " size=" << st.st_size;
  if (with_mtime) os << " mtime=" << st.st_mtim.tv_sec << "." << st.st_mtim.tv_nsec;
  if (S_ISREG(st.st_mode)) os << " sha=" << crypto::Sha256Hex(ReadHost(path));
  if (S_ISLNK(st.st_mode)) os << " -> " << ReadLink(path);
  return os.str();
}

Snapshot SnapshotTree(const std::string& dir) {
  Snapshot out;
  if (auto st = LstatHost(dir)) out["."] = Describe(dir, *st, true);
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::string p = it->path().string();
    if (auto st = LstatHost(p)) out[p.substr(dir.size())] = Describe(p, *st, true);
  }
  return out;
}

Snapshot SnapshotHost() {
  Snapshot out;
  for (const char* p : {"/etc/passwd", "/etc/hostname", "/etc/shadow", "/etc"}) {
    if (auto st = LstatHost(p)) out[p] = Describe(p, *st, true);
  }
  // Directories other processes write to: no times.
  for (const char* p : {"/", "/tmp"}) {
    if (auto st = LstatHost(p)) out[p] = Describe(p, *st, false);
  }
  return out;
}

// remove_all, after giving every directory back its owner's rwx (layers may
// leave 0555 directories, which a non-root test run could not empty).
void RemoveTree(const std::string& dir) {
  std::error_code ec;
  if (auto st = LstatHost(dir); st && S_ISDIR(st->st_mode)) chmod(dir.c_str(), 0700);
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::string p = it->path().string();
    if (auto st = LstatHost(p); st && S_ISDIR(st->st_mode)) chmod(p.c_str(), 0700);
  }
  std::filesystem::remove_all(dir, ec);
  EXPECT_FALSE(ec) << ec.message();
}

// Names the breakout cases try to create outside the root.
const char* const kMarker = "mf-breakout";

bool MarkerEscaped() {
  for (const std::string dir : {"/", "/etc/", "/tmp/", "/etc/sub/"}) {
    if (LstatHost(dir + kMarker)) return true;
  }
  return LstatHost("/etc/unbroken").has_value() || LstatHost("/tmp/x-mf").has_value();
}

// ---------------------------------------------------------------------------
// Fixture: <base>/root is extracted into; <base>/sentinel is a sibling that
// must never change.

struct Ctx {
  std::string base, root, sentinel;
  std::string In(const std::string& rel) const { return root + "/" + rel; }
};

class ApplyFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mf-apply-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    ctx_.base = tmpl;
    ctx_.root = ctx_.base + "/root";
    ctx_.sentinel = ctx_.base + "/sentinel";
    ASSERT_EQ(mkdir(ctx_.root.c_str(), 0755), 0);
    ASSERT_EQ(mkdir(ctx_.sentinel.c_str(), 0750), 0);
    ASSERT_EQ(mkdir((ctx_.sentinel + "/dir").c_str(), 0700), 0);
    std::ofstream(ctx_.sentinel + "/passwd") << "sentinel passwd\n";
    std::ofstream(ctx_.sentinel + "/dir/file") << "sentinel file\n";
    ASSERT_EQ(chmod((ctx_.sentinel + "/passwd").c_str(), 0640), 0);
    ASSERT_EQ(symlink("passwd", (ctx_.sentinel + "/link").c_str()), 0);
    sentinel_before_ = SnapshotTree(ctx_.sentinel);
    host_before_ = SnapshotHost();
    ASSERT_FALSE(MarkerEscaped()) << "leftover marker on the host from an earlier run";
  }

  void TearDown() override {
    ExpectOutsideUnchanged();
    RemoveTree(ctx_.base);
  }

  void ExpectOutsideUnchanged() {
    EXPECT_EQ(SnapshotTree(ctx_.sentinel), sentinel_before_) << "sentinel changed";
    EXPECT_EQ(SnapshotHost(), host_before_) << "host files changed";
    EXPECT_FALSE(MarkerEscaped()) << "a file was written outside the root";
    std::size_t siblings = 0;
    for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(ctx_.base)) ++siblings;
    EXPECT_EQ(siblings, 2u) << "something was created next to the root";
  }

  void FreshRoot() {
    RemoveTree(ctx_.root);
    ASSERT_EQ(mkdir(ctx_.root.c_str(), 0755), 0);
  }

  Expected<ApplyStats> ApplyBytes(const std::string& bytes, const ApplyOptions& options = {}) {
    StringSource source(bytes, 7000);  // short reads on purpose
    return ApplySource(source, options);
  }

  Expected<ApplyStats> ApplySource(ByteSource& source, const ApplyOptions& options = {}) {
    auto root = fs::RootDir::Open(ctx_.root);
    if (!root.ok()) return std::move(root).error();
    return Apply(*root, source, options);
  }

  Ctx ctx_;
  Snapshot sentinel_before_, host_before_;
};

bool IsRoot() { return geteuid() == 0; }

// ---------------------------------------------------------------------------
// The breakout table (containerd TestBreakouts shape): a lower layer applied
// first, the layer under test, and an expected error or a validator. After
// every case the sentinel and the host files are compared with their
// snapshots.

struct Case {
  std::string name;
  std::function<std::vector<E>(const Ctx&)> lower;  // applied first; must succeed
  std::function<std::string(const Ctx&)> layer;     // raw bytes of the layer under test
  ErrorKind kind = ErrorKind::kInternal;
  std::string code;     // empty: success expected
  std::string message;  // full ToString(), when set
  std::function<void(const Ctx&, const ApplyStats*)> validate;
  ApplyOptions options;
  bool needs_root = false;
};

std::function<std::string(const Ctx&)> Layer(std::vector<E> entries) {
  return [entries](const Ctx&) { return Tar(entries); };
}
std::function<std::string(const Ctx&)> LayerCtx(std::function<std::vector<E>(const Ctx&)> f) {
  return [f](const Ctx& c) { return Tar(f(c)); };
}
std::function<std::vector<E>(const Ctx&)> Lower(std::vector<E> entries) {
  return [entries](const Ctx&) { return entries; };
}

Case Reject(std::string name, std::function<std::string(const Ctx&)> layer, ErrorKind kind,
            std::string code, std::string message = "") {
  Case c;
  c.name = std::move(name);
  c.layer = std::move(layer);
  c.kind = kind;
  c.code = std::move(code);
  c.message = std::move(message);
  return c;
}

Case Accept(std::string name, std::function<std::string(const Ctx&)> layer,
            std::function<void(const Ctx&, const ApplyStats*)> validate) {
  Case c;
  c.name = std::move(name);
  c.layer = std::move(layer);
  c.validate = std::move(validate);
  return c;
}

Case WithLower(Case c, std::vector<E> lower) {
  c.lower = Lower(std::move(lower));
  return c;
}

Case WithOptions(Case c, ApplyOptions o) {
  c.options = o;
  return c;
}

Case RootOnly(Case c) {
  c.needs_root = true;
  return c;
}

Case Validate(Case c, std::function<void(const Ctx&, const ApplyStats*)> v) {
  c.validate = std::move(v);
  return c;
}

void ExpectFile(const Ctx& c, const std::string& rel, const std::string& content) {
  auto st = LstatHost(c.In(rel));
  ASSERT_TRUE(st.has_value()) << rel << " missing";
  EXPECT_TRUE(S_ISREG(st->st_mode)) << rel;
  EXPECT_EQ(ReadHost(c.In(rel)), content) << rel;
}
void ExpectMissing(const Ctx& c, const std::string& rel) {
  EXPECT_FALSE(LstatHost(c.In(rel)).has_value()) << rel << " exists";
}
void ExpectSymlink(const Ctx& c, const std::string& rel, const std::string& target) {
  auto st = LstatHost(c.In(rel));
  ASSERT_TRUE(st.has_value()) << rel << " missing";
  EXPECT_TRUE(S_ISLNK(st->st_mode)) << rel;
  EXPECT_EQ(ReadLink(c.In(rel)), target);
}

std::string Repeat(const std::string& part, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += part;
  return s;
}

std::string CapabilityBlob() {
  // VFS_CAP_REVISION_2, effective, permitted = CAP_NET_BIND_SERVICE.
  std::string blob(20, '\0');
  std::uint32_t words[5] = {0x02000001u, 1u << 10, 0, 0, 0};
  std::memcpy(blob.data(), words, sizeof words);
  return blob;
}

std::vector<Case> BreakoutCases() {
  const auto kSec = ErrorKind::kSecurity;
  const auto kInt = ErrorKind::kIntegrity;
  std::vector<Case> cases;
  auto add = [&](Case c) { cases.push_back(std::move(c)); };

  // B1: ".." in names is rejected.
  add(Reject("DotDotEscape", Layer({F("../../etc/passwd", "evil")}), kSec, "layer.breakout.path",
             "entry \"../../etc/passwd\": path escapes the layer root"));
  add(Reject("DotDotInMiddle", Layer({F(std::string("a/../../") + kMarker, "evil")}), kSec,
             "layer.breakout.path"));
  add(Reject("AbsoluteDotDot", Layer({F(std::string("/../") + kMarker, "evil")}), kSec,
             "layer.breakout.path"));
  add(Reject("DotDotToSentinel", Layer({F("../sentinel/passwd", "evil")}), kSec,
             "layer.breakout.path", "entry \"../sentinel/passwd\": path escapes the layer root"));
  add(Reject("DotDotDirectory", Layer({D("..")}), kSec, "layer.breakout.path"));
  add(Reject("DotDotSymlinkName", Layer({L("../evil", "/")}), kSec, "layer.breakout.path"));
  add(Reject("DotDotLaterEntry", Layer({F("ok", "1"), F("../x", "2")}), kSec,
             "layer.breakout.path"));
  add(Accept("DotDotThatStaysInside", Layer({F("a/b/../c", "ok")}),
             [](const Ctx& c, const ApplyStats*) { ExpectFile(c, "a/c", "ok"); }));

  // B2: absolute names are root-relative.
  add(Accept("AbsoluteName",
             Layer({F("/etc/hostname", "in-root\n"), F("/etc/passwd", "root:x:0:0::/:/bin/sh\n")}),
             [](const Ctx& c, const ApplyStats*) {
               ExpectFile(c, "etc/hostname", "in-root\n");
               ExpectFile(c, "etc/passwd", "root:x:0:0::/:/bin/sh\n");
             }));

  // B3: symlinks in parents resolve inside the root.
  add(Accept("SymlinkAbsolute", Layer({D("etc"), L("localetc", "/etc"), F("localetc/unbroken", "u")}),
             [](const Ctx& c, const ApplyStats*) {
               ExpectFile(c, "etc/unbroken", "u");
               ExpectSymlink(c, "localetc", "/etc");
             }));
  add(Accept("SymlinkUpAndOut",
             Layer({D("etc"), L("localetc", "../../../../../../etc"), F("localetc/unbroken", "u")}),
             [](const Ctx& c, const ApplyStats*) { ExpectFile(c, "etc/unbroken", "u"); }));
  add(Accept("SymlinkToRootThenWrite", Layer({L("evil", "/"), F(std::string("evil/etc/") + kMarker, "x")}),
             [](const Ctx& c, const ApplyStats*) {
               ExpectFile(c, std::string("etc/") + kMarker, "x");
             }));
  add(Accept("SymlinkDirUpAndOut",
             Layer({L("d", "../../.."), F(std::string("d/") + kMarker, "x")}),
             [](const Ctx& c, const ApplyStats*) { ExpectFile(c, kMarker, "x"); }));
  add(Reject("SymlinkToSentinelAbsolute",
             LayerCtx([](const Ctx& c) {
               return std::vector<E>{L("s", c.sentinel), F("s/passwd", "evil")};
             }),
             ErrorKind::kInvalidInput, "fs.not_found",
             "entry \"s/passwd\": mkdir (dangling symlink?) \"s\": No such file or directory"));
  add(Reject("SymlinkToSentinelRelative",
             Layer({L("s", "../sentinel"), F("s/passwd", "evil")}), ErrorKind::kInvalidInput,
             "fs.not_found"));
  add(Accept("SymlinkToSentinelPathExistingInRoot",
             LayerCtx([](const Ctx& c) {
               return std::vector<E>{D(c.sentinel), L("s", c.sentinel), F("s/passwd", "in-root")};
             }),
             [](const Ctx& c, const ApplyStats*) {
               ExpectFile(c, c.sentinel.substr(1) + "/passwd", "in-root");
             }));
  add(Reject("SymlinkLoop", Layer({L("l1", "l2"), L("l2", "l1"), F("l1/x", "x")}),
             ErrorKind::kInvalidInput, "fs.loop"));
  add(Reject("SymlinkToProcMagic", Layer({L("p", "/proc/self/root"), F(std::string("p/") + kMarker)}),
             ErrorKind::kInvalidInput, "fs.not_found"));

  // B4: hardlink targets resolve inside the root and must exist there.
  add(Reject("HardlinkRelativeOut", Layer({L("d1", "../../etc"), H("mypasswd", "d1/passwd")}),
             kSec, "layer.breakout.hardlink",
             "entry \"mypasswd\": hardlink target \"d1/passwd\" does not exist inside the layer "
             "root"));
  add(Accept("HardlinkDownAndOutInRoot",
             Layer({D("etc"), F("etc/passwd", "in-root"), L("d1", "../../etc"),
                    H("mypasswd", "d1/passwd")}),
             [](const Ctx& c, const ApplyStats* s) {
               auto link = LstatHost(c.In("mypasswd"));
               auto inroot = LstatHost(c.In("etc/passwd"));
               auto host = LstatHost("/etc/passwd");
               ASSERT_TRUE(link && inroot && host);
               EXPECT_EQ(link->st_ino, inroot->st_ino);
               EXPECT_FALSE(link->st_ino == host->st_ino && link->st_dev == host->st_dev);
               EXPECT_EQ(s->hardlinks, 1u);
             }));
  add(Reject("HardlinkDotDot", Layer({H("x", "../../etc/passwd")}), kSec,
             "layer.breakout.hardlink",
             "entry \"x\": hardlink target \"../../etc/passwd\" escapes the layer root"));
  add(Reject("HardlinkAbsoluteMissing", Layer({H("x", "/etc/passwd")}), kSec,
             "layer.breakout.hardlink"));
  add(Reject("HardlinkToSentinel",
             LayerCtx([](const Ctx& c) { return std::vector<E>{H("x", c.sentinel + "/passwd")}; }),
             kSec, "layer.breakout.hardlink"));
  add(Reject("HardlinkThroughSymlinkToSentinel",
             Layer({L("s", "../sentinel"), H("x", "s/passwd")}), kSec, "layer.breakout.hardlink"));
  add(Reject("HardlinkToDirectory", Layer({D("d"), H("x", "d")}), kSec,
             "layer.breakout.hardlink", "entry \"x\": hardlink target \"d\" is a directory"));
  add(Reject("HardlinkToRoot", Layer({H("x", "/")}), kSec, "layer.breakout.hardlink"));
  add(Accept("HardlinkToSymlink", Layer({L("passwd-link", "/etc/passwd"), H("x", "passwd-link")}),
             [](const Ctx& c, const ApplyStats*) { ExpectSymlink(c, "x", "/etc/passwd"); }));
  add(Accept("HardlinkSymlinkBeforeCreateTarget",
             Layer({D("etc", 0770), L("localpasswd", "/etc/passwd"),
                    H("localpasswd-dup", "localpasswd"), F("/etc/passwd", "after")}),
             [](const Ctx& c, const ApplyStats*) {
               ExpectSymlink(c, "localpasswd-dup", "/etc/passwd");
               ExpectFile(c, "etc/passwd", "after");
             }));
  add(Reject("HardlinkOutsideViaLowerSymlink",
             Layer({H("x", "d1/passwd")}), kSec, "layer.breakout.hardlink"));
  cases.back().lower = Lower({L("d1", "/etc")});

  // B5: duplicates and symlink swaps: last wins, inside the root.
  add(Accept("SymlinkOverridePath",
             Layer({D("foo"), L("foo", "/"), F("foo/tmp/x-mf", "x")}),
             [](const Ctx& c, const ApplyStats* s) {
               ExpectSymlink(c, "foo", "/");
               ExpectFile(c, "tmp/x-mf", "x");
               EXPECT_EQ(s->duplicates, 1u);
               ASSERT_FALSE(s->warnings.empty());
               EXPECT_EQ(s->warnings[0], "entry \"foo\" appears more than once; the last one wins");
             }));
  add(Accept("SymlinkOverridePathDirAgain",
             Layer({D("foo"), L("foo", "/"), D("foo"), F("foo/tmp/x-mf", "x")}),
             [](const Ctx& c, const ApplyStats* s) {
               ExpectFile(c, "foo/tmp/x-mf", "x");
               ExpectMissing(c, "tmp");
               EXPECT_EQ(s->duplicates, 2u);
             }));
  add(Accept("FileOverSymlinkToSentinel",
             LayerCtx([](const Ctx& c) {
               return std::vector<E>{L("x", c.sentinel + "/passwd"), F("x", "new")};
             }),
             [](const Ctx& c, const ApplyStats*) { ExpectFile(c, "x", "new"); }));
  add(Accept("DirOverSymlinkToSentinelDir",
             Layer({L("d", "../sentinel/dir"), D("d"), F("d/file", "new")}),
             [](const Ctx& c, const ApplyStats*) { ExpectFile(c, "d/file", "new"); }));
  add(WithLower(Accept("FileOverLowerSymlinkToHost", Layer({F("etc", "plain")}),
                       [](const Ctx& c, const ApplyStats* s) {
                         ExpectFile(c, "etc", "plain");
                         EXPECT_EQ(s->duplicates, 0u);  // lower entries are not duplicates
                       }),
                {L("etc", "/etc")}));

  // B6: invalid whiteouts delete nothing.
  for (std::string wh : {".wh..", ".wh...", "etc/.wh..", ".wh.", "etc/.wh..."}) {
    add(WithLower(Reject("Whiteout_" + wh, Layer({F(wh)}), kSec, "layer.whiteout.invalid"),
                  {D("etc"), F("etc/keep", "k"), F("keep", "k")}));
    cases.back().validate = [](const Ctx& c, const ApplyStats*) {
      ExpectFile(c, "keep", "k");
      ExpectFile(c, "etc/keep", "k");
    };
  }
  cases[cases.size() - 3].message = "entry \"etc/.wh..\": whiteout \".wh..\" does not name an entry";
  add(Reject("WhiteoutEscape", Layer({F("../.wh.sentinel")}), kSec, "layer.breakout.path"));
  add(WithLower(Accept("WhiteoutCleanedInside", Layer({F("etc/../.wh.keep")}),
                       [](const Ctx& c, const ApplyStats* s) {
                         ExpectMissing(c, "keep");
                         EXPECT_EQ(s->whiteouts, 1u);
                       }),
                {F("keep", "k")}));

  // B7: whiteouts remove the symlink, or act inside the root through it.
  add(WithLower(Accept("WhiteoutSymlink", Layer({F(".wh.localetc")}),
                       [](const Ctx& c, const ApplyStats*) {
                         ExpectMissing(c, "localetc");
                         ExpectFile(c, "etc/passwd", "in-root");
                       }),
                {D("etc"), F("etc/passwd", "in-root"), L("localetc", "/etc")}));
  add(WithLower(Accept("WhiteoutThroughSymlink", Layer({F("localetc/.wh.passwd")}),
                       [](const Ctx& c, const ApplyStats*) {
                         ExpectMissing(c, "etc/passwd");
                         ExpectSymlink(c, "localetc", "/etc");
                       }),
                {D("etc"), F("etc/passwd", "in-root"), L("localetc", "/etc")}));
  add(Accept("WhiteoutThroughSymlinkToSentinel", Layer({L("s", "../sentinel"), F("s/.wh.passwd")}),
             [](const Ctx& c, const ApplyStats* s) {
               ExpectSymlink(c, "s", "../sentinel");
               EXPECT_EQ(s->whiteouts, 0u);
             }));
  add(Reject("OpaqueThroughSymlinkToSentinel",
             Layer({L("s", "../sentinel"), F("s/.wh..wh..opq")}), ErrorKind::kInvalidInput,
             "fs.not_found"));
  add(WithLower(Accept("OpaqueThroughSymlinkInRoot", Layer({F("localetc/.wh..wh..opq")}),
                       [](const Ctx& c, const ApplyStats*) {
                         ExpectMissing(c, "etc/passwd");
                         ExpectSymlink(c, "localetc", "/etc");
                       }),
                {D("etc"), F("etc/passwd", "in-root"), L("localetc", "/etc")}));

  // B8: deferred directory metadata never follows a later symlink.
  {
    E d = D("d", 0700);
    d.mtime = 0;
    add(Accept("DeferredChmodThroughSymlink", Layer({D("etc", 0755), d, L("d", "/etc")}),
               [](const Ctx& c, const ApplyStats* s) {
                 ExpectSymlink(c, "d", "/etc");
                 auto etc = LstatHost(c.In("etc"));
                 ASSERT_TRUE(etc);
                 EXPECT_EQ(etc->st_mode & 07777, 0755u);
                 EXPECT_EQ(etc->st_mtim.tv_sec, kMtime);
                 EXPECT_EQ(s->dropped_fixups, 1u);
               }));
    add(Accept("DeferredChmodThroughSymlinkToHost", Layer({d, L("d", "/etc")}),
               [](const Ctx& c, const ApplyStats*) { ExpectSymlink(c, "d", "/etc"); }));
    add(Accept("DeferredChmodThroughSymlinkToSentinel",
               LayerCtx([d](const Ctx& c) { return std::vector<E>{d, L("d", c.sentinel)}; }),
               [](const Ctx&, const ApplyStats* s) { EXPECT_EQ(s->dropped_fixups, 1u); }));
    add(Accept("DeferredChmodThroughRelativeSymlink", Layer({d, L("d", "../sentinel")}),
               [](const Ctx&, const ApplyStats* s) { EXPECT_EQ(s->dropped_fixups, 1u); }));
    add(Accept("DeferredChmodOnReplacedDirectory", Layer({d, F("d"), D("d", 0711)}),
               [](const Ctx& c, const ApplyStats*) {
                 auto st = LstatHost(c.In("d"));
                 ASSERT_TRUE(st);
                 EXPECT_EQ(st->st_mode & 07777, 0711u);  // the last entry's
                 EXPECT_EQ(st->st_mtim.tv_sec, kMtime);
               }));
  }

  // B9: xattrs and ACLs on a symlink never reach its target.
  {
    E link = With(With(L("link", "target"), "user.evil", "1"), "security.capability",
                  CapabilityBlob());
    add(Accept("SymlinkXattrDropped", Layer({F("target", "t"), link}),
               [](const Ctx& c, const ApplyStats* s) {
                 EXPECT_EQ(XattrHost(c.In("target"), "user.evil"), "<none>");
                 EXPECT_EQ(XattrHost(c.In("target"), "security.capability"), "<none>");
                 EXPECT_EQ(s->dropped_xattrs, 2u);
               }));
    E to_sentinel = With(L("link", "../sentinel/passwd"), "user.evil", "1");
    add(Accept("SymlinkXattrToSentinel", Layer({to_sentinel}),
               [](const Ctx&, const ApplyStats* s) { EXPECT_EQ(s->dropped_xattrs, 1u); }));
    E acl = L("link", "target");
    acl.acl = true;
    add(Accept("SymlinkAclIgnored", Layer({F("target", "t", 0640), acl}),
               [](const Ctx& c, const ApplyStats*) {
                 EXPECT_EQ(XattrHost(c.In("target"), "system.posix_acl_access"), "<none>");
                 EXPECT_EQ(LstatHost(c.In("target"))->st_mode & 07777, 0640u);
               }));
  }

  // B10: device numbers are range-checked; nodes only inside the root, as root.
  add(Reject("DeviceMajorOutOfRange", Layer({Dev("dev/evil", AE_IFCHR, std::uint64_t{1} << 40, 3)}),
             kSec, "layer.device.range",
             "entry \"dev/evil\": device number 1099511627776:3 out of range (major <= 4095, "
             "minor <= 1048575)"));
  add(Reject("DeviceMinorOutOfRange", Layer({Dev("dev/evil", AE_IFBLK, 8, 1 << 20)}), kSec,
             "layer.device.range"));
  add(Reject("DeviceMajorAliasing", Layer({Dev("dev/mem", AE_IFCHR, 4096 + 1, 1)}), kSec,
             "layer.device.range"));
  add(RootOnly(Accept("DeviceNodesAsRoot",
                      Layer({Dev("dev/null", AE_IFCHR, 1, 3, 0666), Dev("dev/loop0", AE_IFBLK, 7, 0, 0660),
                             Dev("run/fifo", AE_IFIFO, 0, 0, 0620)}),
                      [](const Ctx& c, const ApplyStats* s) {
                        auto null = LstatHost(c.In("dev/null"));
                        ASSERT_TRUE(null);
                        EXPECT_TRUE(S_ISCHR(null->st_mode));
                        EXPECT_EQ(null->st_mode & 07777, 0666u);
                        EXPECT_EQ(null->st_rdev, makedev(1, 3));
                        EXPECT_TRUE(S_ISBLK(LstatHost(c.In("dev/loop0"))->st_mode));
                        EXPECT_TRUE(S_ISFIFO(LstatHost(c.In("run/fifo"))->st_mode));
                        EXPECT_EQ(s->devices, 3u);
                      })));
  add(RootOnly(Reject("DeviceThroughSymlinkToSentinel",
                      Layer({L("dev", "../sentinel"), Dev("dev/null", AE_IFCHR, 1, 3)}),
                      ErrorKind::kInvalidInput, "fs.not_found")));
  {
    ApplyOptions no_devices;
    no_devices.create_devices = false;
    add(WithOptions(Accept("DevicesSkippedWhenDisabled",
                           Layer({Dev("dev/null", AE_IFCHR, 1, 3), Dev("dev/sda", AE_IFBLK, 8, 0),
                                  Dev("fifo", AE_IFIFO, 0, 0)}),
                           [](const Ctx& c, const ApplyStats* s) {
                             ExpectMissing(c, "dev/null");
                             ExpectMissing(c, "fifo");
                             EXPECT_EQ(s->skipped, 3u);
                             EXPECT_EQ(s->devices, 0u);
                             EXPECT_EQ(s->warning_count, 3u);
                           }),
                    no_devices));
  }

  // B11: only security.capability and user.* xattrs are applied.
  add(RootOnly(Accept(
      "TrustedXattrDropped",
      Layer({With(With(D("d"), "trusted.overlay.opaque", "y"), "user.keep", "v"),
             With(With(F("d/f", "x"), "trusted.overlay.redirect", "/etc"), "security.capability",
                  CapabilityBlob()),
             With(F("g", "x"), "system.posix_acl_access", "junk")}),
      [](const Ctx& c, const ApplyStats* s) {
        EXPECT_EQ(XattrHost(c.In("d"), "trusted.overlay.opaque"), "<none>");
        EXPECT_EQ(XattrHost(c.In("d"), "user.keep"), "v");
        EXPECT_EQ(XattrHost(c.In("d/f"), "trusted.overlay.redirect"), "<none>");
        EXPECT_EQ(XattrHost(c.In("d/f"), "security.capability"), CapabilityBlob());
        EXPECT_EQ(s->dropped_xattrs, 3u);
        ASSERT_FALSE(s->warnings.empty());
        EXPECT_EQ(s->warnings[0],
                  "xattr \"trusted.overlay.opaque\" on \"d\" dropped: only security.capability "
                  "and user.* are applied");
      })));

  // B12: declared sizes past the limit stop before any data is written.
  add(Validate(Reject("DeclaredTenTerabytes",
                      [](const Ctx&) {
                        return UstarHeader("big", '0', std::uint64_t{10} << 40) + std::string(4096, 'x');
                      },
                      kSec, "layer.limit.bytes",
                      "entry \"big\": size 10995116277760 exceeds the layer limit of 21474836480 "
                      "uncompressed bytes"),
               [](const Ctx& c, const ApplyStats*) { ExpectMissing(c, "big"); }));
  {
    ApplyOptions one_gib;
    one_gib.max_bytes = std::uint64_t{1} << 30;
    add(WithOptions(Reject("DeclaredTenGigabytesOverLimit",
                           [](const Ctx&) {
                             return UstarHeader("big", '0', std::uint64_t{10} << 30) + kEnd;
                           },
                           kSec, "layer.limit.bytes"),
                    one_gib));
  }
  {
    // Holes are not in the stream but are written as zeros: a few KiB of
    // tar must not become unbounded disk use.
    ApplyOptions limit;
    limit.max_bytes = std::uint64_t{100} << 20;
    E s1 = F("sparse1", "tail");
    s1.sparse_size = std::int64_t{60} << 20;
    E s2 = s1;
    s2.path = "sparse2";
    add(WithOptions(Validate(Reject("SparseFilesOverLimit", Layer({s1, s2}), kSec,
                                    "layer.limit.bytes",
                                    "entry \"sparse2\": size 62914560 exceeds the layer limit of "
                                    "104857600 uncompressed bytes"),
                             [](const Ctx& c, const ApplyStats*) {
                               ExpectMissing(c, "sparse2");
                               auto st = LstatHost(c.In("sparse1"));
                               ASSERT_TRUE(st);
                               EXPECT_EQ(st->st_size, std::int64_t{60} << 20);
                             }),
                    limit));
  }
  add(Reject("DeclaredTenGigabytesTruncated",
             [](const Ctx&) { return UstarHeader("big", '0', std::uint64_t{10} << 30) + std::string(4096, 'x'); },
             kInt, "layer.truncated"));

  // B13: entries, depth, name and pax limits.
  {
    ApplyOptions few;
    few.max_entries = 100;
    std::vector<E> many;
    for (int i = 0; i < 101; ++i) many.push_back(F("f" + std::to_string(i)));
    add(WithOptions(Reject("TooManyEntries", Layer(many), kSec, "layer.limit.entries",
                           "layer has more than 100 entries"),
                    few));
  }
  add(Reject("TooDeep", Layer({F(Repeat("a/", 256) + "f")}), kSec, "layer.limit.depth"));
  cases.back().message = "entry \"" + Repeat("a/", 256) + "f\": path has 257 components, limit is 256";
  add(Accept("DeepestAllowed", Layer({F(Repeat("a/", 255) + "f", "deep")}),
             [](const Ctx& c, const ApplyStats*) { ExpectFile(c, Repeat("a/", 255) + "f", "deep"); }));
  add(Reject("TooDeepHardlinkTarget", Layer({F("f"), H("h", Repeat("./a/../", 1) + Repeat("b/", 257) + "f")}),
             kSec, "layer.limit.depth"));
  add(Reject("FourThousandDeep", Layer({F(Repeat("a/", 4096) + "f")}), kSec, "layer.limit.name"));
  add(Reject("NameTooLong", Layer({F(std::string(8192, 'n'))}), kSec, "layer.limit.name",
             "entry name is 8192 bytes, limit is 4096"));
  add(Reject("LinkTargetTooLong", Layer({L("l", std::string(5000, 't'))}), kSec,
             "layer.limit.name"));
  add(Reject("OneMegabyteName", Layer({F(std::string(1 << 20, 'n'))}), kSec, "layer.limit.pax"));
  {
    ApplyOptions small_pax;
    small_pax.max_pax_bytes = 4096;
    add(WithOptions(Reject("PaxOverConfiguredLimit",
                           Layer({With(F("f"), "user.big", std::string(10000, 'v'))}), kSec,
                           "layer.limit.pax",
                           "entry has 24064 bytes of extended headers, limit is 4096"),
                    small_pax));
  }

  // B14: truncation, corruption and trailing garbage.
  {
    std::string tar = Tar({F("a", std::string(3000, 'a')), F("b", "bb")});
    add(Reject("TruncatedInData", [tar](const Ctx&) { return tar.substr(0, 2048); }, kInt,
               "layer.truncated"));
    add(Reject("TruncatedInHeader", [tar](const Ctx&) { return tar.substr(0, 700); }, kInt,
               "layer.truncated"));
    // Cut exactly after the last entry's data: no end-of-archive marker.
    add(Reject("TruncatedAtEntryBoundary",
               [tar](const Ctx&) { return tar.substr(0, tar.size() - 1024); }, kInt,
               "layer.truncated", "tar stream ends without an end-of-archive marker"));
    add(Reject("TrailingGarbage", [tar](const Ctx&) { return tar + "garbage"; }, kInt,
               "layer.truncated", "non-zero bytes after the end-of-archive marker"));
    add(Reject("TrailingGarbageFarAway",
               [tar](const Ctx&) { return tar + std::string(1 << 20, '\0') + "x"; }, kInt,
               "layer.truncated"));
    add(Accept("TrailingZeros", [tar](const Ctx&) { return tar + std::string(20480, '\0'); },
               [](const Ctx& c, const ApplyStats*) { ExpectFile(c, "b", "bb"); }));
    add(Reject("CorruptHeaderChecksum",
               [tar](const Ctx&) {
                 std::string bad = tar;
                 for (std::size_t off = 0; off < bad.size(); off += 512) {
                   if (bad.compare(off, 2, std::string("b\0", 2)) == 0) bad[off] = 'c';
                 }
                 return bad;
               },
               kInt, "layer.truncated", "reading tar header: Damaged tar archive"));
    add(Reject("GzipTruncated",
               [tar](const Ctx&) {
                 std::string gz = Compress(tar, Compression::kGzip);
                 return gz.substr(0, gz.size() - 10);
               },
               kInt, "layer.truncated"));
    add(Reject("GzipTrailingGarbage",
               [tar](const Ctx&) { return Compress(tar, Compression::kGzip) + "garbage!"; }, kInt,
               "layer.truncated"));
    add(Reject("ZstdTruncated",
               [tar](const Ctx&) {
                 std::string z = Compress(tar, Compression::kZstd);
                 return z.substr(0, z.size() - 5);
               },
               kInt, "layer.truncated"));
    add(Reject("NotATar", [](const Ctx&) { return std::string(2048, 'x'); }, kInt,
               "layer.truncated", "opening tar stream: Unrecognized archive format"));
  }

  // Owners that would be truncated into root.
  {
    E f = F("f");
    f.uid = std::int64_t{1} << 32;
    add(Reject("OwnerOutOfRange", Layer({f}), kSec, "layer.owner.range",
               "entry \"f\": owner 4294967296:0 out of range"));
  }
  return cases;
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class BreakoutTest : public ApplyFixture, public ::testing::WithParamInterface<Case> {};

TEST_P(BreakoutTest, StaysInsideRoot) {
  const Case& c = GetParam();
  if (c.needs_root && !IsRoot()) GTEST_SKIP() << "needs root";
  if (c.lower) {
    auto lower = ApplyBytes(Tar(c.lower(ctx_)));
    ASSERT_TRUE(lower.ok()) << lower.error().ToString();
  }
  auto result = ApplyBytes(c.layer(ctx_), c.options);
  if (c.code.empty()) {
    ASSERT_TRUE(result.ok()) << result.error().ToString();
  } else {
    ASSERT_FALSE(result.ok()) << "applied, expected " << c.code;
    EXPECT_EQ(result.error().code, c.code) << result.error().ToString();
    EXPECT_EQ(result.error().kind, c.kind) << result.error().ToString();
    if (!c.message.empty()) {
      EXPECT_EQ(result.error().ToString(), c.message);
    }
  }
  if (c.validate) c.validate(ctx_, result.ok() ? &*result : nullptr);
}

INSTANTIATE_TEST_SUITE_P(Breakouts, BreakoutTest, ::testing::ValuesIn(BreakoutCases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           std::string n = info.param.name;
                           for (char& ch : n) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return n + "_" + std::to_string(info.index);
                         });

// ---------------------------------------------------------------------------
// Ordinary layers.

class ApplyTest : public ApplyFixture {};

TEST_F(ApplyTest, RegularFilesWithMetadata) {
  E su = F("usr/bin/su", std::string(200000, 's'), 04755);
  su.uid = 1000;
  su.gid = 1001;
  su.mtime_nsec = 123456789;
  E cap = With(F("usr/bin/ping", "ping", 0755), "user.note", "hello");
  auto stats = ApplyBytes(Tar({D("usr", 0755), D("usr/bin", 0755), su, cap}));
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  ExpectFile(ctx_, "usr/bin/su", std::string(200000, 's'));
  auto st = LstatHost(ctx_.In("usr/bin/su"));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->st_mode & 07777, 04755u);  // setuid kept
  if (IsRoot()) {
    EXPECT_EQ(st->st_uid, 1000u);
    EXPECT_EQ(st->st_gid, 1001u);
  }
  EXPECT_EQ(st->st_mtim.tv_sec, kMtime);
  EXPECT_EQ(st->st_mtim.tv_nsec, 123456789);
  EXPECT_EQ(XattrHost(ctx_.In("usr/bin/ping"), "user.note"), "hello");
  EXPECT_EQ(stats->files, 2u);
  EXPECT_EQ(stats->directories, 2u);
  EXPECT_EQ(stats->entries, 4u);
  EXPECT_EQ(stats->warning_count, 0u);
}

TEST_F(ApplyTest, DirectoryMetadataIsAppliedAfterChildren) {
  E d = D("d", 0555);
  d.mtime = 1000;
  auto stats = ApplyBytes(Tar({d, F("d/f", "x"), D("d/sub"), F("d/sub/g", "y")}));
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  auto st = LstatHost(ctx_.In("d"));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->st_mode & 07777, 0555u);
  EXPECT_EQ(st->st_mtim.tv_sec, 1000);
  EXPECT_EQ(LstatHost(ctx_.In("d/sub"))->st_mtim.tv_sec, kMtime);
}

TEST_F(ApplyTest, ImplicitParentsAreCreated) {
  auto stats = ApplyBytes(Tar({F("a/b/c/file", "x")}));
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  ExpectFile(ctx_, "a/b/c/file", "x");
  EXPECT_EQ(LstatHost(ctx_.In("a/b"))->st_mode & 0777, 0755u & ~022u & 0777);
}

TEST_F(ApplyTest, DirectoryOverDirectoryKeepsContents) {
  ASSERT_TRUE(ApplyBytes(Tar({D("d"), F("d/old", "o")})).ok());
  auto stats = ApplyBytes(Tar({D("d", 0700), F("d/new", "n")}));
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  ExpectFile(ctx_, "d/old", "o");
  ExpectFile(ctx_, "d/new", "n");
  EXPECT_EQ(LstatHost(ctx_.In("d"))->st_mode & 07777, 0700u);
  EXPECT_EQ(stats->duplicates, 0u);
}

TEST_F(ApplyTest, DuplicateEntriesLastWins) {
  auto stats = ApplyBytes(Tar({F("a", "1"), F("a", "2"), D("b"), F("b", "file now")}));
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  ExpectFile(ctx_, "a", "2");
  ExpectFile(ctx_, "b", "file now");
  EXPECT_EQ(stats->duplicates, 2u);
  EXPECT_EQ(stats->warning_count, 2u + 1u);  // two duplicates, and b's dropped fix-up
}

TEST_F(ApplyTest, WhiteoutsRemoveLowerEntries) {
  ASSERT_TRUE(ApplyBytes(Tar({F("a", "a"), D("b"), F("b/c", "c"), L("l", "/b"), F("keep")})).ok());
  auto stats = ApplyBytes(Tar({F(".wh.a"), F(".wh.b"), F(".wh.l"), F(".wh.missing")}));
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  ExpectMissing(ctx_, "a");
  ExpectMissing(ctx_, "b");
  ExpectMissing(ctx_, "l");
  ExpectFile(ctx_, "keep", "");
  ExpectMissing(ctx_, ".wh.a");
  EXPECT_EQ(stats->whiteouts, 3u);
}

TEST_F(ApplyTest, WhiteoutDoesNotHideSameLayerEntry) {
  auto stats = ApplyBytes(Tar({F("a", "mine"), F(".wh.a")}));
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  ExpectFile(ctx_, "a", "mine");
  EXPECT_EQ(stats->whiteouts, 0u);
  EXPECT_EQ(stats->warning_count, 1u);
}

TEST_F(ApplyTest, AufsMetadataIsSkipped) {
  auto stats = ApplyBytes(Tar({F(".wh..wh.plnk/123.4"), F(".wh..wh.aufs")}));
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  ExpectMissing(ctx_, ".wh..wh.aufs");
  ExpectMissing(ctx_, ".wh..wh.plnk");
  EXPECT_EQ(stats->skipped, 2u);
}

std::vector<E> OpaqueLower() {
  return {D("d"), F("d/lower", "l"), D("d/sub"), F("d/sub/x", "x"), D("d/c"), F("d/c/lower", "l"),
          F("other", "o"), F("d/linked", "shared")};
}

TEST_F(ApplyTest, OpaqueMarkerBeforeSiblings) {
  ASSERT_TRUE(ApplyBytes(Tar(OpaqueLower())).ok());
  auto stats = ApplyBytes(Tar({D("d"), F("d/.wh..wh..opq"), F("d/new", "n")}));
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  ExpectFile(ctx_, "d/new", "n");
  ExpectMissing(ctx_, "d/lower");
  ExpectMissing(ctx_, "d/sub");
  ExpectMissing(ctx_, "d/.wh..wh..opq");
  ExpectFile(ctx_, "other", "o");
  EXPECT_EQ(stats->opaque_dirs, 1u);
}

TEST_F(ApplyTest, OpaqueMarkerAfterSiblings) {
  ASSERT_TRUE(ApplyBytes(Tar(OpaqueLower())).ok());
  auto stats = ApplyBytes(Tar({D("d"), F("d/new", "n"), D("d/sub"), F("d/sub/y", "y"),
                               F("d/c/x", "implicit parent"), H("d/link", "other"),
                               H("d/link2", "d/linked"), F("d/.wh..wh..opq")}));
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  ExpectFile(ctx_, "d/new", "n");
  ExpectFile(ctx_, "d/sub/y", "y");
  ExpectMissing(ctx_, "d/sub/x");  // lower content of a directory this layer re-declared
  ExpectFile(ctx_, "d/c/x", "implicit parent");
  ExpectMissing(ctx_, "d/c/lower");
  ExpectMissing(ctx_, "d/lower");
  ExpectFile(ctx_, "d/link", "o");  // a hardlink to a lower file, made by this layer
  ExpectFile(ctx_, "other", "o");
  ExpectFile(ctx_, "d/link2", "shared");  // kept, though its lower twin's name goes
  ExpectMissing(ctx_, "d/linked");
}

TEST_F(ApplyTest, OpaqueRootDirectory) {
  ASSERT_TRUE(ApplyBytes(Tar({F("a"), D("b"), F("b/c")})).ok());
  auto stats = ApplyBytes(Tar({F("new", "n"), F(".wh..wh..opq")}));
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  ExpectFile(ctx_, "new", "n");
  ExpectMissing(ctx_, "a");
  ExpectMissing(ctx_, "b");
}

TEST_F(ApplyTest, RootEntryIsIgnored) {
  auto stats = ApplyBytes(Tar({D("./", 0700), D("/", 0700), F("x")}));
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  EXPECT_EQ(stats->skipped, 2u);
  EXPECT_EQ(LstatHost(ctx_.root)->st_mode & 07777, 0755u);
}

TEST_F(ApplyTest, CompressedLayers) {
  std::string tar = Tar({D("etc"), F("etc/os-release", "ID=test\n")});
  for (Compression c : {Compression::kNone, Compression::kGzip, Compression::kZstd}) {
    FreshRoot();
    auto stats = ApplyBytes(Compress(tar, c));
    ASSERT_TRUE(stats.ok()) << CompressionName(c) << ": " << stats.error().ToString();
    ExpectFile(ctx_, "etc/os-release", "ID=test\n");
  }
}

TEST_F(ApplyTest, EmptyLayers) {
  auto empty = ApplyBytes("");
  ASSERT_TRUE(empty.ok()) << empty.error().ToString();
  EXPECT_EQ(empty->diff_id, "sha256:" + crypto::Sha256Hex(""));
  auto zeros = ApplyBytes(std::string(1024, '\0'));
  ASSERT_TRUE(zeros.ok()) << zeros.error().ToString();
  EXPECT_EQ(zeros->entries, 0u);
  EXPECT_EQ(zeros->diff_id, "sha256:" + crypto::Sha256Hex(std::string(1024, '\0')));
}

TEST_F(ApplyTest, WarningsAreCappedButCounted) {
  ApplyOptions options;
  options.max_warnings = 2;
  std::vector<E> entries;
  for (int i = 0; i < 5; ++i) entries.push_back(With(F("f" + std::to_string(i)), "trusted.x", "y"));
  auto stats = ApplyBytes(Tar(entries), options);
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  EXPECT_EQ(stats->warning_count, 5u);
  EXPECT_EQ(stats->warnings.size(), 2u);
  EXPECT_EQ(stats->dropped_xattrs, 5u);
}

TEST_F(ApplyTest, TrackedMemoryIsBounded) {
  ApplyOptions options;
  options.max_tracked_bytes = 4096;
  std::vector<E> dirs;
  for (int i = 0; i < 100; ++i) dirs.push_back(D("dir" + std::to_string(i)));
  auto stats = ApplyBytes(Tar(dirs), options);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.error().code, "layer.limit.memory");
  EXPECT_EQ(stats.error().kind, ErrorKind::kSecurity);
}

// B12: a gzip bomb is stopped by counting decompressed bytes, while it is
// generated: only about the limit is ever decompressed.
TEST_F(ApplyTest, GzipBombStopsAtLimit) {
  ApplyOptions options;
  options.max_bytes = std::uint64_t{256} << 20;
  GzipBombSource bomb(std::uint64_t{10} << 30);  // "10 GB of zeros"
  auto stats = ApplySource(bomb, options);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.error().code, "layer.limit.bytes");
  EXPECT_EQ(stats.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(stats.error().message, "layer exceeds 268435456 uncompressed bytes");
  EXPECT_LT(bomb.fed(), std::uint64_t{300} << 20);
  EXPECT_LT(bomb.compressed(), std::uint64_t{4} << 20);
}

TEST_F(ApplyTest, GzipBombAfterAFile) {
  ApplyOptions options;
  options.max_bytes = std::uint64_t{64} << 20;
  // A real entry, then endless zeros: the reader stops at the first zero
  // block; the drain of the "padding" hits the limit.
  GeneratedSource source(Tar({F("a", "x")}), std::uint64_t{10} << 30, '\0');
  auto stats = ApplySource(source, options);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.error().code, "layer.limit.bytes");
  EXPECT_LT(source.produced(), std::uint64_t{65} << 20);
}

// B13: a 100 MB pax record is refused before it is buffered.
TEST_F(ApplyTest, HugePaxRecord) {
  const std::uint64_t body = 100u << 20;
  std::string head = UstarHeader("PaxHeaders/f", 'x', body) + std::to_string(body) + " comment=";
  GeneratedSource source(head, body, 'c');
  auto stats = ApplySource(source);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.error().code, "layer.limit.pax");
  EXPECT_EQ(stats.error().kind, ErrorKind::kSecurity);
  EXPECT_LT(source.produced(), std::uint64_t{2} << 20);
}

TEST_F(ApplyTest, ManyEntriesScaledDown) {
  // B13's 5 M entries, scaled: the limit trips at exactly max_entries + 1.
  ApplyOptions options;
  options.max_entries = 2000;
  std::vector<E> entries;
  for (int i = 0; i < 2500; ++i) entries.push_back(D("d" + std::to_string(i % 50) + "/e" + std::to_string(i)));
  auto stats = ApplyBytes(Tar(entries), options);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.error().code, "layer.limit.entries");
  entries.resize(2000);
  FreshRoot();
  auto ok = ApplyBytes(Tar(entries), options);
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();
  EXPECT_EQ(ok->entries, 2000u);
}

// B15: the diff_id is the sha256 of the uncompressed stream, whatever the
// compression; callers compare it with rootfs.diff_ids.
TEST_F(ApplyTest, DiffIdIsDigestOfUncompressedTar) {
  std::string tar = Tar({D("etc"), F("etc/a", "a")}) + std::string(4096, '\0');
  const std::string want = "sha256:" + crypto::Sha256Hex(tar);
  for (Compression c : {Compression::kNone, Compression::kGzip, Compression::kZstd}) {
    FreshRoot();
    auto stats = ApplyBytes(Compress(tar, c));
    ASSERT_TRUE(stats.ok()) << stats.error().ToString();
    EXPECT_EQ(stats->diff_id, want) << CompressionName(c);
    EXPECT_EQ(stats->uncompressed_bytes, tar.size());
  }
  FreshRoot();
  std::string other = Tar({D("etc"), F("etc/a", "b")});
  auto changed = ApplyBytes(other);
  ASSERT_TRUE(changed.ok());
  EXPECT_NE(changed->diff_id, want);  // a caller comparing with rootfs.diff_ids rejects it
}

// B16: random tars from a vocabulary of hostile names, applied again and
// again onto one root: errors are fine, writes outside are not.
TEST_F(ApplyTest, RandomLayersStayInside) {
  std::mt19937 rng(20240611);
  const std::vector<std::string> names = {
      "a", "b", "a/b", "etc", "etc/passwd", "/etc/passwd", "../x", "a/../../x", "l", "l/x",
      "l/etc/passwd", "d/.wh..", ".wh.l", "a/.wh..wh..opq", ".wh.a", "tmp/x-mf", "s", "s/passwd",
      "s/dir/file", "./", "a/b/c/d"};
  const std::vector<std::string> targets = {
      "/", "/etc", "..", "../..", "../../..", "../sentinel", ctx_.sentinel, ctx_.sentinel + "/passwd",
      "/proc/self/root", "a", "l", "etc/passwd", "s/passwd", "/tmp"};
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  int errors = 0;
  for (int round = 0; round < 300; ++round) {
    std::vector<E> entries;
    int n = 1 + static_cast<int>(rng() % 10);
    for (int i = 0; i < n; ++i) {
      switch (rng() % 6) {
        case 0: entries.push_back(F(pick(names), "r" + std::to_string(round), 0600 + rng() % 0200)); break;
        case 1: {
          E d = D(pick(names), 0700 + rng() % 077);
          d.mtime = rng() % 3 == 0 ? 0 : kMtime;
          entries.push_back(d);
          break;
        }
        case 2: entries.push_back(L(pick(names), pick(targets))); break;
        case 3: entries.push_back(H(pick(names), pick(rng() % 2 ? names : targets))); break;
        case 4: entries.push_back(With(F(pick(names), "x"), rng() % 2 ? "trusted.overlay.opaque" : "user.x", "y")); break;
        case 5: entries.push_back(Dev(pick(names), AE_IFCHR, 1, 3)); break;
      }
    }
    auto stats = ApplyBytes(Tar(entries));
    if (!stats.ok()) {
      ++errors;
      EXPECT_NE(stats.error().kind, ErrorKind::kInternal) << stats.error().ToString();
      EXPECT_NE(stats.error().code, "layer.breakout.escaped") << stats.error().ToString();
    }
    ExpectOutsideUnchanged();
    if (HasFailure()) {
      ADD_FAILURE() << "round " << round;
      break;
    }
    if (round % 50 == 49) FreshRoot();
  }
  EXPECT_GT(errors, 0);
}

// ---------------------------------------------------------------------------
// overlay_whiteouts: each layer's own tree, whiteouts in overlayfs form (the
// worker's snapshots; stacking them is tested in worker/snapshot).

class OverlayApplyTest : public ApplyFixture {
 protected:
  void SetUp() override {
    ApplyFixture::SetUp();  // first: TearDown runs after a skip too
    if (!IsRoot()) GTEST_SKIP() << "overlay whiteouts need root";
  }
  static ApplyOptions Overlay() {
    ApplyOptions o;
    o.overlay_whiteouts = true;
    return o;
  }
  void ExpectWhiteout(const std::string& rel) {
    auto st = LstatHost(ctx_.In(rel));
    ASSERT_TRUE(st.has_value()) << rel << " missing";
    EXPECT_TRUE(S_ISCHR(st->st_mode)) << rel;
    EXPECT_EQ(st->st_rdev, makedev(0, 0)) << rel;
  }
  void ExpectOpaque(const std::string& rel, bool opaque = true) {
    EXPECT_EQ(XattrHost(ctx_.In(rel), "trusted.overlay.opaque"), opaque ? "y" : "<none>") << rel;
  }
};

TEST_F(OverlayApplyTest, WhiteoutsBecomeCharDevices) {
  auto stats = ApplyBytes(Tar({D("usr"), D("usr/share"), F("usr/share/.wh.doc"), F(".wh.top"),
                               F("deep/implicit/.wh.x")}),
                          Overlay());
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  ExpectWhiteout("usr/share/doc");
  ExpectWhiteout("top");
  ExpectWhiteout("deep/implicit/x");
  ExpectMissing(ctx_, "usr/share/.wh.doc");
  ExpectMissing(ctx_, ".wh.top");
  ExpectOpaque("usr/share", false);
  EXPECT_EQ(stats->whiteouts, 3u);
  EXPECT_EQ(stats->warning_count, 0u);
}

TEST_F(OverlayApplyTest, OpaqueMarkerSetsXattrAndKeepsSiblings) {
  auto stats = ApplyBytes(
      Tar({D("etc"), F("etc/.wh..wh..opq"), F("etc/x", "x"), D("var"), F("var/y", "y"),
           F("var/.wh..wh..opq"), F("new/.wh..wh..opq")}),
      Overlay());
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  ExpectOpaque("etc");
  ExpectOpaque("var");
  ExpectOpaque("new");  // created for the marker
  ExpectFile(ctx_, "etc/x", "x");
  ExpectFile(ctx_, "var/y", "y");
  ExpectMissing(ctx_, "etc/.wh..wh..opq");
  EXPECT_EQ(stats->opaque_dirs, 3u);
  EXPECT_EQ(LstatHost(ctx_.In("etc"))->st_mode & 07777, 0755u);
}

TEST_F(OverlayApplyTest, OpaqueRootDirectory) {
  auto stats = ApplyBytes(Tar({F("new", "n"), F(".wh..wh..opq")}), Overlay());
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  EXPECT_EQ(XattrHost(ctx_.root, "trusted.overlay.opaque"), "y");
  ExpectFile(ctx_, "new", "n");
}

TEST_F(OverlayApplyTest, WhiteoutOfSameLayerEntry) {
  auto stats = ApplyBytes(Tar({F("a", "mine"), F(".wh.a"), D("d"), F("d/f", "f"), F(".wh.d")}),
                          Overlay());
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  ExpectFile(ctx_, "a", "mine");  // hides the lower "a" by itself
  ExpectFile(ctx_, "d/f", "f");
  ExpectOpaque("d");  // the lower "d" is gone, this layer's stays
  EXPECT_EQ(stats->whiteouts, 1u);
  EXPECT_EQ(stats->warning_count, 1u);
}

TEST_F(OverlayApplyTest, EntriesReplacingAWhiteout) {
  auto stats = ApplyBytes(Tar({F(".wh.d"), D("d", 0700), F("d/n", "n"), F(".wh.f"), F("f", "file"),
                               F(".wh.l"), L("l", "d"), F(".wh.w"), F(".wh.w")}),
                          Overlay());
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  auto d = LstatHost(ctx_.In("d"));
  ASSERT_TRUE(d && S_ISDIR(d->st_mode));
  EXPECT_EQ(d->st_mode & 07777, 0700u);
  ExpectOpaque("d");
  ExpectFile(ctx_, "d/n", "n");
  ExpectFile(ctx_, "f", "file");
  ExpectSymlink(ctx_, "l", "d");
  ExpectWhiteout("w");
  EXPECT_EQ(stats->duplicates, 0u);
}

TEST_F(OverlayApplyTest, EntriesBelowAWhiteout) {
  auto stats = ApplyBytes(Tar({F(".wh.a"), F("a/.wh.b"), F(".wh.c"), F("c/sub/file", "f"),
                               F(".wh.d"), F("d/.wh..wh..opq")}),
                          Overlay());
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  ExpectWhiteout("a");  // still hidden as a whole
  ExpectOpaque("c");    // the lower "c" is gone; this layer's implicit one stays
  ExpectOpaque("c/sub", false);
  ExpectFile(ctx_, "c/sub/file", "f");
  ExpectOpaque("d");
  EXPECT_TRUE(S_ISDIR(LstatHost(ctx_.In("d"))->st_mode));
}

TEST_F(OverlayApplyTest, HardlinkToWhiteoutIsRefused) {
  for (const char* target : {"a", "a/x"}) {
    FreshRoot();
    auto stats = ApplyBytes(Tar({F(".wh.a"), H("b", target)}), Overlay());
    ASSERT_FALSE(stats.ok()) << target;
    EXPECT_EQ(stats.error().kind, ErrorKind::kSecurity);
    EXPECT_EQ(stats.error().code, "layer.breakout.hardlink");
    EXPECT_EQ(stats.error().message, std::string("hardlink target \"") + target +
                                         "\" does not exist inside the layer root");
    ExpectMissing(ctx_, "b");
  }
}

TEST_F(OverlayApplyTest, ZeroDeviceAndOverlayXattrsAreDropped) {
  auto stats = ApplyBytes(Tar({Dev("c", AE_IFCHR, 0, 0), Dev("null", AE_IFCHR, 1, 3),
                               With(F("f"), "user.overlay.opaque", "y"),
                               With(F("g"), "user.keep", "v")}),
                          Overlay());
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  ExpectMissing(ctx_, "c");
  EXPECT_TRUE(S_ISCHR(LstatHost(ctx_.In("null"))->st_mode));
  EXPECT_EQ(XattrHost(ctx_.In("f"), "user.overlay.opaque"), "<none>");
  EXPECT_EQ(XattrHost(ctx_.In("g"), "user.keep"), "v");
  EXPECT_EQ(stats->skipped, 1u);
  EXPECT_EQ(stats->dropped_xattrs, 1u);
}

TEST_F(OverlayApplyTest, NeedsAnEmptyRoot) {
  std::ofstream(ctx_.In("old")) << "x";
  auto stats = ApplyBytes(Tar({F("a")}), Overlay());
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(stats.error().code, "layer.overlay.not_empty");
  EXPECT_EQ(stats.error().message,
            "a layer is unpacked with overlay whiteouts only into an empty directory");
  ExpectMissing(ctx_, "a");
}

TEST_F(OverlayApplyTest, DiffIdIsUnchanged) {
  std::string tar = Tar({D("etc"), F("etc/.wh.passwd"), F("etc/.wh..wh..opq")});
  auto plain = ApplyBytes(tar);
  ASSERT_TRUE(plain.ok()) << plain.error().ToString();
  FreshRoot();
  auto overlay = ApplyBytes(tar, Overlay());
  ASSERT_TRUE(overlay.ok()) << overlay.error().ToString();
  EXPECT_EQ(overlay->diff_id, plain->diff_id);
  EXPECT_EQ(overlay->diff_id, "sha256:" + crypto::Sha256Hex(tar));
}

TEST(OverlayApplyNonRootTest, NeedsRoot) {
  if (IsRoot()) GTEST_SKIP() << "checks the refusal seen without root";
  char tmpl[] = "/tmp/mf-apply-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  auto root = fs::RootDir::Open(tmpl);
  ASSERT_TRUE(root.ok());
  std::string tar = Tar({F("a")});
  StringSource source(tar);
  ApplyOptions o;
  o.overlay_whiteouts = true;
  auto stats = Apply(*root, source, o);
  rmdir(tmpl);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.error().kind, ErrorKind::kUnimplemented);
  EXPECT_EQ(stats.error().code, "layer.overlay.needs_root");
}

}  // namespace
}  // namespace manifold::layer
