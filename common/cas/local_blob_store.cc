#include "common/cas/local_blob_store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <system_error>

#include "common/cas/digest.h"
#include "common/crypto/sha256.h"

namespace manifold::cas {

using internal::UniqueFd;

struct LocalBlobStore::Dirs {
  UniqueFd root;
  UniqueFd blobs;  ///< blobs/sha256
  UniqueFd ingest;
  UniqueFd quarantine;
};

namespace {

constexpr char kGcLockName[] = "gc.lock";
constexpr std::size_t kWriteBufferBytes = 64 * 1024;

std::string BlobName(std::string_view hex) { return "blobs/sha256/" + std::string(hex); }
std::string IngestName(std::string_view name) { return "ingest/" + std::string(name); }

bool Before(const struct timespec& a, const struct timespec& b) {
  return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

class LocalBlobWriter final : public BlobWriter {
 public:
  LocalBlobWriter(std::shared_ptr<const LocalBlobStore::Dirs> dirs, UniqueFd gc_lock,
                  UniqueFd file, std::string name, std::optional<std::string> expected_digest,
                  std::optional<std::uint64_t> expected_size)
      : dirs_(std::move(dirs)),
        gc_lock_(std::move(gc_lock)),
        file_(std::move(file)),
        name_(std::move(name)),
        expected_digest_(std::move(expected_digest)),
        expected_size_(expected_size) {
    buffer_.reserve(kWriteBufferBytes);
  }
  ~LocalBlobWriter() override { Abort(); }

  Expected<void> Write(std::string_view data) override {
    if (state_ != State::kOpen) return WriterClosedError();
    if (expected_size_ && written_ + data.size() > *expected_size_) {
      return Fail(SizeMismatchError(*expected_size_, written_ + data.size(), /*at_least=*/true));
    }
    hash_.Update(data);
    written_ += data.size();
    if (buffer_.size() + data.size() > kWriteBufferBytes) {
      if (auto r = Flush(); !r.ok()) return Fail(std::move(r).error());
    }
    if (data.size() >= kWriteBufferBytes) {
      if (auto r = internal::WriteAll(file_.get(), data, IngestName(name_)); !r.ok()) {
        return Fail(std::move(r).error());
      }
    } else {
      buffer_.append(data);
    }
    return Ok();
  }

  Expected<std::string> Commit() override {
    if (state_ != State::kOpen) return WriterClosedError();
    auto published = Publish();
    if (!published.ok()) return Fail(std::move(published).error());
    state_ = State::kCommitted;
    file_.Reset();  // the gc.lock stays held until destruction (see header)
    return published;
  }

  void Abort() override {
    if (state_ != State::kOpen) return;
    state_ = State::kClosed;
    // Unlink while still holding the file's lock, so a sweeper never sees our
    // temp unlocked.
    ::unlinkat(dirs_->ingest.get(), name_.c_str(), 0);
    file_.Reset();
    gc_lock_.Reset();
  }

  std::uint64_t bytes_written() const override { return written_; }

 private:
  enum class State { kOpen, kCommitted, kClosed };

  Error Fail(Error error) {
    Abort();
    return error;
  }

  Expected<void> Flush() {
    if (buffer_.empty()) return Ok();
    MF_TRY_VOID(internal::WriteAll(file_.get(), buffer_, IngestName(name_)));
    buffer_.clear();
    return Ok();
  }

  Expected<std::string> Publish() {
    MF_TRY_VOID(Flush());
    // Size before digest (image-spec descriptor.md).
    if (expected_size_ && written_ != *expected_size_) {
      return SizeMismatchError(*expected_size_, written_, /*at_least=*/false);
    }
    std::string hex = hash_.HexDigest();
    std::string digest = DigestFromHex(hex);
    if (expected_digest_ && *expected_digest_ != digest) {
      return DigestMismatchError(*expected_digest_, digest);
    }
    if (::fchmod(file_.get(), 0444) != 0) return internal::SysError("chmod", IngestName(name_), errno);
    MF_TRY_VOID(internal::Fsync(file_.get(), IngestName(name_)));
    MF_TRY_VOID(PlaceNoReplace(hex));
    return digest;
  }

  // Moves the verified temp to blobs/sha256/<hex> unless a blob is there
  // already; then the existing copy wins (same digest, same bytes) and ours is
  // discarded, which makes concurrent ingests of one digest safe (F2).
  Expected<void> PlaceNoReplace(const std::string& hex) {
    int ingest = dirs_->ingest.get();
    int blobs = dirs_->blobs.get();
    for (int attempt = 0; attempt < 3; ++attempt) {
      int rc = ::renameat2(ingest, name_.c_str(), blobs, hex.c_str(), RENAME_NOREPLACE);
      if (rc != 0 && (errno == EINVAL || errno == ENOSYS)) {
        // Filesystem without RENAME_NOREPLACE: link() refuses an existing
        // target just as atomically; the temp name is dropped after.
        rc = ::linkat(ingest, name_.c_str(), blobs, hex.c_str(), 0);
        if (rc == 0) ::unlinkat(ingest, name_.c_str(), 0);
      }
      if (rc == 0) {
        state_ = State::kCommitted;  // the temp name is gone; nothing to abort
        return internal::Fsync(blobs, "blobs/sha256");
      }
      if (errno != EEXIST) return internal::SysError("rename", BlobName(hex), errno);
      // Refresh the existing copy's mtime: GC's min_age grace then covers it
      // as it would a fresh write. EPERM (another user's blob) is harmless.
      if (::utimensat(blobs, hex.c_str(), nullptr, 0) == 0 || errno != ENOENT) {
        ::unlinkat(ingest, name_.c_str(), 0);
        state_ = State::kCommitted;
        return Ok();
      }
      // Deleted between our rename and the touch: try placing ours again.
    }
    return MakeError(ErrorKind::kTransient, "cas.commit_race",
                     "blob " + BlobName(hex) + " kept appearing and disappearing during commit");
  }

  std::shared_ptr<const LocalBlobStore::Dirs> dirs_;
  UniqueFd gc_lock_;
  UniqueFd file_;
  std::string name_;
  std::optional<std::string> expected_digest_;
  std::optional<std::uint64_t> expected_size_;
  crypto::Sha256 hash_;
  std::string buffer_;
  std::uint64_t written_ = 0;
  State state_ = State::kOpen;
};

class LocalBlobReader final : public BlobReader {
 public:
  LocalBlobReader(std::shared_ptr<const LocalBlobStore::Dirs> dirs, UniqueFd file,
                  std::string hex, const struct stat& st, bool verify)
      : dirs_(std::move(dirs)),
        file_(std::move(file)),
        hex_(std::move(hex)),
        size_(static_cast<std::uint64_t>(st.st_size)),
        dev_(st.st_dev),
        ino_(st.st_ino),
        verify_(verify) {}

  Expected<std::size_t> Read(std::span<char> buffer) override {
    if (error_) return *error_;
    if (done_) return std::size_t{0};
    MF_TRY(n, internal::ReadSome(file_.get(), buffer, BlobName(hex_)));
    if (n > 0) {
      if (verify_) hash_.Update(std::string_view(buffer.data(), n));
      return n;
    }
    done_ = true;
    if (!verify_) return std::size_t{0};
    std::string actual = hash_.HexDigest();
    if (actual == hex_) return std::size_t{0};
    error_ = CorruptError(DigestFromHex(hex_), DigestFromHex(actual), Quarantine());
    return *error_;
  }

  std::uint64_t size() const override { return size_; }

 private:
  // Moves the bad blob out of blobs/ so Has() turns false and a re-fetch can
  // store a good copy. Returns what happened, for the error message.
  std::string Quarantine() {
    int blobs = dirs_->blobs.get();
    struct stat st;
    if (::fstatat(blobs, hex_.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return "it is no longer in the store";
    }
    // Another writer may have replaced it with a good copy since we opened it.
    if (st.st_dev != dev_ || st.st_ino != ino_) return "a newer copy is in the store";
    if (::renameat(blobs, hex_.c_str(), dirs_->quarantine.get(), hex_.c_str()) == 0) {
      return "moved to quarantine";
    }
    int err = errno;
    if (::unlinkat(blobs, hex_.c_str(), 0) == 0) {
      return std::string("quarantine failed (") + std::strerror(err) + "), deleted";
    }
    return std::string("quarantine failed (") + std::strerror(err) + "), still in the store";
  }

  std::shared_ptr<const LocalBlobStore::Dirs> dirs_;
  UniqueFd file_;
  std::string hex_;
  std::uint64_t size_;
  dev_t dev_;
  ino_t ino_;
  bool verify_;
  crypto::Sha256 hash_;
  bool done_ = false;
  std::optional<Error> error_;
};

}  // namespace

LocalBlobStore::LocalBlobStore(std::string root, std::shared_ptr<const Dirs> dirs)
    : root_(std::move(root)), dirs_(std::move(dirs)) {}

LocalBlobStore::~LocalBlobStore() = default;

Expected<std::unique_ptr<LocalBlobStore>> LocalBlobStore::Open(const std::string& root) {
  std::error_code ec;
  std::filesystem::create_directories(root, ec);
  if (ec) return internal::SysError("mkdir", root, ec.value());
  MF_TRY(root_fd, internal::OpenAt(AT_FDCWD, root, O_RDONLY | O_DIRECTORY));
  auto dirs = std::make_shared<Dirs>();
  MF_TRY(blobs_parent, internal::OpenOrMakeDirAt(root_fd.get(), "blobs"));
  MF_TRY(blobs, internal::OpenOrMakeDirAt(blobs_parent.get(), "sha256"));
  MF_TRY(ingest, internal::OpenOrMakeDirAt(root_fd.get(), "ingest"));
  MF_TRY(quarantine, internal::OpenOrMakeDirAt(root_fd.get(), "quarantine"));
  dirs->root = std::move(root_fd);
  dirs->blobs = std::move(blobs);
  dirs->ingest = std::move(ingest);
  dirs->quarantine = std::move(quarantine);
  std::unique_ptr<LocalBlobStore> store(new LocalBlobStore(root, std::move(dirs)));
  MF_TRY_VOID(store->SweepIngest().With("sweeping " + root + "/ingest"));
  return store;
}

Expected<void> LocalBlobStore::SweepIngest() {
  struct timespec opened;
  ::clock_gettime(CLOCK_REALTIME, &opened);
  int ingest = dirs_->ingest.get();
  MF_TRY(names, internal::ListDir(ingest, "ingest"));
  for (const std::string& name : names) {
    struct stat st;
    if (::fstatat(ingest, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // another process swept it first
      return internal::SysError("stat", IngestName(name), errno);
    }
    // Only files older than this Open(): anything newer belongs to a writer
    // that started after us. Not ours to judge either: non-regular files.
    if (!S_ISREG(st.st_mode) || !Before(st.st_mtim, opened)) continue;
    MF_TRY(file, internal::OpenAtIfExists(ingest, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK));
    if (!file) continue;
    MF_TRY(locked, internal::Flock(file->get(), LOCK_EX, /*wait=*/false, IngestName(name)));
    if (!locked) continue;  // a live writer holds it
    if (::unlinkat(ingest, name.c_str(), 0) != 0 && errno != ENOENT) {
      return internal::SysError("unlink", IngestName(name), errno);
    }
    ++swept_at_open_;
  }
  return Ok();
}

Expected<bool> LocalBlobStore::Has(std::string_view digest) const {
  MF_TRY(hex, DigestHex(digest));
  struct stat st;
  if (::fstatat(dirs_->blobs.get(), std::string(hex).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    return S_ISREG(st.st_mode);
  }
  if (errno == ENOENT) return false;
  return internal::SysError("stat", BlobName(hex), errno);
}

Expected<std::uint64_t> LocalBlobStore::Stat(std::string_view digest) const {
  MF_TRY(hex, DigestHex(digest));
  struct stat st;
  if (::fstatat(dirs_->blobs.get(), std::string(hex).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return NotFoundError(digest);
    return internal::SysError("stat", BlobName(hex), errno);
  }
  if (!S_ISREG(st.st_mode)) return NotFoundError(digest);
  return static_cast<std::uint64_t>(st.st_size);
}

Expected<std::unique_ptr<BlobWriter>> LocalBlobStore::BeginIngest(
    std::optional<std::string> expected_digest, std::optional<std::uint64_t> expected_size) {
  if (expected_digest) MF_TRY_VOID(DigestHex(*expected_digest));
  MF_TRY(gc_lock, internal::LockFileAt(dirs_->root.get(), kGcLockName, LOCK_SH, /*wait=*/true));
  int ingest = dirs_->ingest.get();
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::string name = internal::RandomHex(16);
    int fd;
    do {
      fd = ::openat(ingest, name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    0600);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0 && errno == EEXIST) continue;
    if (fd < 0) return internal::SysError("create", IngestName(name), errno);
    UniqueFd file(fd);
    // Between create and flock a sweeper in another process could lock and
    // unlink our file; if so (lock busy, or no links left) start over.
    MF_TRY(locked, internal::Flock(file.get(), LOCK_EX, /*wait=*/false, IngestName(name)));
    if (!locked) continue;
    struct stat st;
    if (::fstat(file.get(), &st) != 0) return internal::SysError("stat", IngestName(name), errno);
    if (st.st_nlink == 0) continue;
    return std::make_unique<LocalBlobWriter>(dirs_, std::move(*gc_lock), std::move(file),
                                             std::move(name), std::move(expected_digest),
                                             expected_size);
  }
  return MakeError(ErrorKind::kInternal, "cas.ingest_name",
                   "could not create a temp file in " + root_ + "/ingest");
}

Expected<std::unique_ptr<BlobReader>> LocalBlobStore::OpenBlob(std::string_view digest,
                                                               bool verify) {
  MF_TRY(hex, DigestHex(digest));
  std::string name(hex);
  MF_TRY(file, internal::OpenAtIfExists(dirs_->blobs.get(), name, O_RDONLY | O_NOFOLLOW));
  if (!file) return NotFoundError(digest);
  struct stat st;
  if (::fstat(file->get(), &st) != 0) return internal::SysError("stat", BlobName(hex), errno);
  if (!S_ISREG(st.st_mode)) return NotFoundError(digest);
  return std::make_unique<LocalBlobReader>(dirs_, std::move(*file), std::move(name), st, verify);
}

Expected<void> LocalBlobStore::Delete(std::string_view digest) {
  MF_TRY(hex, DigestHex(digest));
  if (::unlinkat(dirs_->blobs.get(), std::string(hex).c_str(), 0) != 0 && errno != ENOENT) {
    return internal::SysError("unlink", BlobName(hex), errno);
  }
  return Ok();
}

Expected<std::vector<std::string>> LocalBlobStore::List() const {
  MF_TRY(names, internal::ListDir(dirs_->blobs.get(), "blobs/sha256"));
  std::vector<std::string> digests;
  for (const std::string& name : names) {
    if (IsSha256Hex(name)) digests.push_back(DigestFromHex(name));
  }
  return digests;
}

Expected<std::optional<GcLock>> LocalBlobStore::LockForGc(bool wait) {
  MF_TRY(fd, internal::LockFileAt(dirs_->root.get(), kGcLockName, LOCK_EX, wait));
  if (!fd) return std::optional<GcLock>();
  return std::optional<GcLock>(GcLock(std::move(*fd)));
}

Expected<std::optional<std::uint64_t>> LocalBlobStore::DeleteIfOlder(
    std::string_view digest, std::chrono::system_clock::time_point cutoff) {
  MF_TRY(hex, DigestHex(digest));
  std::string name(hex);
  struct stat st;
  if (::fstatat(dirs_->blobs.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return std::optional<std::uint64_t>();
    return internal::SysError("stat", BlobName(hex), errno);
  }
  auto since_epoch = cutoff.time_since_epoch();
  struct timespec cut;
  cut.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
  cut.tv_nsec = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    since_epoch - std::chrono::seconds(cut.tv_sec))
                    .count();
  if (!Before(st.st_mtim, cut)) return std::optional<std::uint64_t>();
  if (::unlinkat(dirs_->blobs.get(), name.c_str(), 0) != 0) {
    if (errno == ENOENT) return std::optional<std::uint64_t>();
    return internal::SysError("unlink", BlobName(hex), errno);
  }
  return std::optional<std::uint64_t>(static_cast<std::uint64_t>(st.st_size));
}

Expected<std::string> LocalBlobStore::BlobPath(std::string_view digest) const {
  MF_TRY(hex, DigestHex(digest));
  return root_ + "/" + BlobName(hex);
}

}  // namespace manifold::cas
