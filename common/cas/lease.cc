#include "common/cas/lease.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <system_error>

#include "common/cas/digest.h"

namespace manifold::cas {
namespace {

using internal::UniqueFd;

constexpr char kLockName[] = ".lock";
constexpr char kTempPrefix[] = ".tmp-";
constexpr char kHeader[] = "manifold-lease v1";
constexpr std::string_view kExpiryKey = "expiry_ms ";
// A lease of 100k blobs is ~7 MiB; anything much bigger is not ours.
constexpr std::size_t kMaxLeaseFileBytes = 16 << 20;

bool IsValidId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
  });
}

Expected<std::string> ValidId(std::string_view id) {
  if (!IsValidId(id)) {
    return MakeError(ErrorKind::kInvalidInput, "cas.lease_id_invalid",
                     "invalid lease id " + QuoteForError(id) + ": want 1-64 of [A-Za-z0-9_-]");
  }
  return std::string(id);
}

std::string LeaseName(std::string_view id) { return "leases/" + std::string(id); }

std::int64_t ToMs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

Error Corrupt(std::string_view id, std::string_view why) {
  return MakeError(ErrorKind::kIntegrity, "cas.lease_corrupt",
                   "lease " + std::string(id) + " is corrupt: " + std::string(why));
}

Expected<Lease> Parse(std::string_view id, std::string_view text) {
  Lease lease;
  lease.id = id;
  std::size_t line_no = 0;
  bool have_expiry = false;
  while (!text.empty()) {
    std::size_t nl = text.find('\n');
    if (nl == std::string_view::npos) return Corrupt(id, "missing final newline");
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    ++line_no;
    if (line_no == 1) {
      if (line != kHeader) return Corrupt(id, "bad header");
    } else if (line_no == 2) {
      if (line.substr(0, kExpiryKey.size()) != kExpiryKey) return Corrupt(id, "no expiry");
      std::string_view num = line.substr(kExpiryKey.size());
      if (num.empty() || num.size() > 18 ||
          !std::all_of(num.begin(), num.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return Corrupt(id, "bad expiry");
      }
      // Beyond the clock's range (year ~2262 for nanosecond clocks) the
      // conversion below would overflow.
      constexpr auto kMaxMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::duration::max())
                                  .count();
      long long ms = std::stoll(std::string(num));
      if (ms > kMaxMs) return Corrupt(id, "bad expiry");
      lease.expiry = std::chrono::system_clock::time_point(
          std::chrono::duration_cast<std::chrono::system_clock::duration>(
              std::chrono::milliseconds(ms)));
      have_expiry = true;
    } else {
      if (!DigestHex(line).ok()) return Corrupt(id, "bad digest on line " + std::to_string(line_no));
      lease.digests.emplace_back(line);
    }
  }
  if (!have_expiry) return Corrupt(id, "truncated");
  std::sort(lease.digests.begin(), lease.digests.end());
  lease.digests.erase(std::unique(lease.digests.begin(), lease.digests.end()),
                      lease.digests.end());
  return lease;
}

std::string Serialize(const Lease& lease) {
  std::string out = std::string(kHeader) + "\n" + std::string(kExpiryKey) +
                    std::to_string(ToMs(lease.expiry)) + "\n";
  for (const auto& d : lease.digests) out += d + "\n";
  return out;
}

Error ExpiryPast(std::string_view id) {
  return MakeError(ErrorKind::kInvalidInput, "cas.lease_expiry_past",
                   "lease " + std::string(id) + " expiry is in the past");
}

}  // namespace

Expected<LeaseStore> LeaseStore::Open(const std::string& root, Clock now) {
  std::error_code ec;
  std::filesystem::create_directories(root, ec);
  if (ec) return internal::SysError("mkdir", root, ec.value());
  MF_TRY(root_fd, internal::OpenAt(AT_FDCWD, root, O_RDONLY | O_DIRECTORY));
  MF_TRY(dir, internal::OpenOrMakeDirAt(root_fd.get(), "leases"));
  LeaseStore store(std::move(dir), std::move(now));
  MF_TRY(lock, store.Lock());
  MF_TRY(names, internal::ListDir(store.dir_.get(), "leases"));
  for (const auto& name : names) {
    // Temps exist only while a writer holds the lock we now hold: leftovers.
    if (name.rfind(kTempPrefix, 0) == 0 && ::unlinkat(store.dir_.get(), name.c_str(), 0) != 0 &&
        errno != ENOENT) {
      return internal::SysError("unlink", LeaseName(name), errno);
    }
  }
  return store;
}

Expected<UniqueFd> LeaseStore::Lock() const {
  MF_TRY(fd, internal::LockFileAt(dir_.get(), kLockName, LOCK_EX, /*wait=*/true));
  return std::move(*fd);
}

Expected<std::optional<Lease>> LeaseStore::Read(const std::string& id) const {
  MF_TRY(file, internal::OpenAtIfExists(dir_.get(), id, O_RDONLY | O_NOFOLLOW));
  if (!file) return std::optional<Lease>();
  std::string text;
  std::vector<char> buffer(64 * 1024);
  for (;;) {
    MF_TRY(n, internal::ReadSome(file->get(), buffer, LeaseName(id)));
    if (n == 0) break;
    text.append(buffer.data(), n);
    if (text.size() > kMaxLeaseFileBytes) return Corrupt(id, "larger than 16 MiB");
  }
  MF_TRY(lease, Parse(id, text));
  return std::optional<Lease>(std::move(lease));
}

Expected<void> LeaseStore::Write(const Lease& lease) const {
  std::string temp = kTempPrefix + lease.id;
  MF_TRY(file, internal::OpenAt(dir_.get(), temp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0644));
  auto written = [&]() -> Expected<void> {
    MF_TRY_VOID(internal::WriteAll(file.get(), Serialize(lease), LeaseName(temp)));
    MF_TRY_VOID(internal::Fsync(file.get(), LeaseName(temp)));
    if (::renameat(dir_.get(), temp.c_str(), dir_.get(), lease.id.c_str()) != 0) {
      return internal::SysError("rename", LeaseName(lease.id), errno);
    }
    return internal::Fsync(dir_.get(), "leases");
  }();
  if (!written.ok()) ::unlinkat(dir_.get(), temp.c_str(), 0);
  return written;
}

Expected<Lease> LeaseStore::ReadLive(const std::string& id) const {
  MF_TRY(lease, Read(id));
  if (!lease) {
    return MakeError(ErrorKind::kInvalidInput, "cas.lease_not_found", "lease " + id + " not found");
  }
  if (lease->expiry <= now_()) {
    ::unlinkat(dir_.get(), id.c_str(), 0);
    return MakeError(ErrorKind::kTransient, "cas.lease_expired",
                     "lease " + id + " expired; its blobs may have been collected");
  }
  return std::move(*lease);
}

Expected<void> LeaseStore::Create(std::string_view id_in,
                                  std::chrono::system_clock::time_point expiry) {
  MF_TRY(id, ValidId(id_in));
  if (expiry <= now_()) return ExpiryPast(id);
  MF_TRY(lock, Lock());
  MF_TRY(existing, Read(id));
  if (existing && existing->expiry > now_()) {
    return MakeError(ErrorKind::kInvalidInput, "cas.lease_exists",
                     "lease " + id + " already exists");
  }
  return Write(Lease{id, expiry, {}});
}

Expected<void> LeaseStore::Add(std::string_view id_in, const std::vector<std::string>& digests) {
  MF_TRY(id, ValidId(id_in));
  for (const auto& d : digests) MF_TRY_VOID(DigestHex(d));
  MF_TRY(lock, Lock());
  MF_TRY(lease, ReadLive(id));
  std::set<std::string> all(lease.digests.begin(), lease.digests.end());
  std::size_t before = all.size();
  all.insert(digests.begin(), digests.end());
  if (all.size() == before) return Ok();
  lease.digests.assign(all.begin(), all.end());
  return Write(lease);
}

Expected<void> LeaseStore::Renew(std::string_view id_in,
                                 std::chrono::system_clock::time_point expiry) {
  MF_TRY(id, ValidId(id_in));
  if (expiry <= now_()) return ExpiryPast(id);
  MF_TRY(lock, Lock());
  MF_TRY(lease, ReadLive(id));
  lease.expiry = expiry;
  return Write(lease);
}

Expected<void> LeaseStore::Release(std::string_view id_in) {
  MF_TRY(id, ValidId(id_in));
  MF_TRY(lock, Lock());
  if (::unlinkat(dir_.get(), id.c_str(), 0) != 0 && errno != ENOENT) {
    return internal::SysError("unlink", LeaseName(id), errno);
  }
  return Ok();
}

Expected<std::vector<Lease>> LeaseStore::Active() const {
  MF_TRY(lock, Lock());
  MF_TRY(names, internal::ListDir(dir_.get(), "leases"));
  auto now = now_();
  std::vector<Lease> out;
  for (const auto& name : names) {
    if (!IsValidId(name)) continue;  // .lock, temps, strays
    MF_TRY(lease, Read(name));
    if (!lease) continue;
    if (lease->expiry <= now) {
      if (::unlinkat(dir_.get(), name.c_str(), 0) != 0 && errno != ENOENT) {
        return internal::SysError("unlink", LeaseName(name), errno);
      }
      continue;
    }
    out.push_back(std::move(*lease));
  }
  return out;
}

}  // namespace manifold::cas
