#include "worker/snapshot/snapshotter.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <thread>
#include <unordered_set>

#include "common/crypto/sha256.h"
#include "common/fs/root_dir.h"
#include "common/layer/diff.h"
#include "common/layer/tar_writer.h"
#include "common/oci/digest.h"
#include "worker/snapshot/overlay_mount.h"
#include "worker/snapshot/state_error.h"

namespace manifold::worker {
namespace {

constexpr std::string_view kChainPrefix = "chain-";
// Flattened prefixes are a multiple of this many layers, so the chains of
// later steps (which only grow at the top) find the same prefix again.
constexpr std::size_t kFlattenStride = 16;

std::size_t JoinedSize(std::span<const std::string> names) {
  std::size_t size = names.empty() ? 0 : names.size() - 1;
  for (const std::string& n : names) size += n.size();
  return size;
}

bool IsDir(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The kernel ignores an opaque marker on a lower layer's root: the layers
// below such a snapshot must be left out instead.
bool HasOpaqueRoot(const std::string& path) {
  char value[2];
  ssize_t n = ::lgetxattr(path.c_str(), "trusted.overlay.opaque", value, sizeof value);
  return n == 1 && value[0] == 'y';
}

class SocketSink : public layer::ByteSink {
 public:
  explicit SocketSink(int fd) : fd_(fd) {}
  Expected<void> Write(std::string_view data) override {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return StateError("send", "flattening stream", errno);
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return Ok();
  }

 private:
  int fd_;
};

class SocketSource : public layer::ByteSource {
 public:
  explicit SocketSource(int fd) : fd_(fd) {}
  Expected<std::size_t> Read(std::span<char> buffer) override {
    for (;;) {
      ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return StateError("recv", "flattening stream", errno);
      return static_cast<std::size_t>(n);
    }
  }

 private:
  int fd_;
};

// Copies the tree at `from` into the empty directory `to` through the layer
// code (WriteTree -> tar -> Apply), streaming: types, modes, owners, mtimes,
// hardlinks, devices and the xattrs layers carry survive, as in a layer.
Expected<void> CopyTree(const std::string& from, const std::string& to) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    return StateError("socketpair", "flattening stream", errno);
  }
  fs::UniqueFd reader(fds[0]);
  fs::UniqueFd writer_fd(fds[1]);
  Expected<layer::DiffStats> written = layer::DiffStats{};
  std::thread writer([&from, &writer_fd, &written] {
    SocketSink sink(writer_fd.get());
    layer::TarWriter tar(sink);
    try {  // the top of this thread: an assertion must not end the process
      written = layer::WriteTree(from, tar, layer::DiffOptions{});
    } catch (const InternalError& e) {
      written = MakeError(ErrorKind::kInternal, "snapshot.flatten.assert", e.what());
    }
    writer_fd.Reset();  // end of stream
  });
  // If Apply throws (an assertion), stop and join the writer on the way out.
  struct Joiner {
    std::thread& thread;
    fs::UniqueFd& fd;
    ~Joiner() {
      fd.Reset();
      if (thread.joinable()) thread.join();
    }
  } joiner{writer, reader};
  auto apply = [&to, &reader]() -> Expected<layer::ApplyStats> {
    MF_TRY(root, fs::RootDir::Open(to));
    // Trusted input (our own snapshots): the limits are only a backstop.
    layer::ApplyOptions options;
    options.max_bytes = std::uint64_t{1} << 50;
    options.max_entries = std::uint64_t{1} << 32;
    options.max_depth = 4096;
    options.max_tracked_bytes = std::uint64_t{1} << 36;
    SocketSource source(reader.get());
    return layer::Apply(root, source, options);
  };
  Expected<layer::ApplyStats> applied = apply();
  reader.Reset();  // a writer still sending now fails with EPIPE
  writer.join();
  // Report the cause: a writer that failed only because Apply stopped
  // reading, or an Apply that saw the stream end early because the writer
  // failed, is a consequence.
  bool writer_broke = !written.ok() && !written.error().message.starts_with("send ");
  if (writer_broke || applied.ok()) {
    if (!written.ok()) return std::move(written).error().With("reading " + from);
    return Ok();
  }
  return std::move(applied).error().With("writing " + to);
}

}  // namespace

std::string ChainId(std::span<const std::string> diff_ids) {
  MF_ASSERT(!diff_ids.empty(), "ChainID of an empty chain");
  std::string id = diff_ids[0];
  for (std::size_t i = 1; i < diff_ids.size(); ++i) {
    id = "sha256:" + crypto::Sha256Hex(id + " " + diff_ids[i]);
  }
  return id;
}

Expected<std::string> Snapshotter::CheckDiffId(std::string_view diff_id) {
  MF_TRY(digest, oci::ParseDigest(diff_id));
  if (digest.algorithm != "sha256") {
    return MakeError(ErrorKind::kUnimplemented, "snapshot.diff_id.algorithm",
                     "snapshots are keyed by sha256 diff_ids, not " + digest.algorithm);
  }
  return digest.hex;
}

Expected<Snapshotter> Snapshotter::Open(const std::string& state_dir) {
  char* real = ::realpath(state_dir.c_str(), nullptr);
  if (real == nullptr) return StateError("resolve", state_dir, errno);
  std::string dir = std::string(real) + "/snapshots";
  ::free(real);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return StateError("mkdir", dir, errno);
  if (!IsDir(dir)) return StateError("open", dir, ENOTDIR);
  MF_TRY_VOID(SweepScratchDirs(dir).With("opening snapshot store " + dir));
  return Snapshotter(std::move(dir));
}

Expected<std::optional<std::string>> Snapshotter::TryUnpacked(std::string_view diff_id) const {
  MF_TRY(hex, CheckDiffId(diff_id));
  std::string path = dir_ + "/" + hex + "/fs";
  if (!IsDir(path)) return std::optional<std::string>();
  return std::optional<std::string>(std::move(path));
}

Expected<std::string> Snapshotter::Unpacked(std::string_view diff_id) const {
  MF_TRY(path, TryUnpacked(diff_id));
  if (!path) {
    return MakeError(ErrorKind::kInternal, "snapshot.missing",
                     "layer " + std::string(diff_id) + " is not unpacked");
  }
  return std::move(*path);
}

Expected<std::string> Snapshotter::Publish(ScratchDir scratch, const std::string& name) {
  MF_TRY_VOID(scratch.KeepOnly("fs"));
  MF_TRY_VOID(scratch.Publish(name));  // false: someone else's copy is there; ours is gone
  return dir_ + "/" + name + "/fs";
}

Expected<std::string> Snapshotter::Unpack(std::string_view diff_id, layer::ByteSource& layer_bytes,
                                          const layer::ApplyOptions& options) {
  MF_TRY(hex, CheckDiffId(diff_id));
  MF_TRY(existing, TryUnpacked(diff_id));
  if (existing) return std::move(*existing);
  const std::string context = "unpacking layer " + std::string(diff_id);
  MF_TRY(scratch, NewScratch());
  MF_TRY(fs_path, scratch.Mkdir("fs"));
  MF_TRY(root, fs::RootDir::Open(fs_path));
  layer::ApplyOptions overlay = options;
  overlay.overlay_whiteouts = true;
  MF_TRY(stats, layer::Apply(root, layer_bytes, overlay).With(context));
  if (stats.diff_id != diff_id) {
    return MakeError(
               ErrorKind::kIntegrity, "layer.diffid_mismatch",
               "layer uncompresses to " + stats.diff_id + ", expected " + std::string(diff_id))
        .With(context);
  }
  return Publish(std::move(scratch), hex);
}

Expected<std::string> Snapshotter::Commit(std::string_view diff_id, ScratchDir scratch) {
  MF_TRY(hex, CheckDiffId(diff_id));
  return Publish(std::move(scratch), hex);
}

Expected<std::vector<std::string>> Snapshotter::Lowers(std::span<const std::string> chain,
                                                       std::size_t budget_bytes) {
  struct Lower {
    std::size_t index;  // in `chain`
    std::string name;
  };
  std::vector<Lower> lowers;  // top first
  std::unordered_set<std::string_view> seen;
  std::size_t start = 0;  // the lowest layer that is not hidden
  for (std::size_t i = chain.size(); i-- > 0;) {
    MF_TRY(hex, CheckDiffId(chain[i]));
    MF_TRY(path, Unpacked(chain[i]));
    // A layer seen again lower down (the empty layer, typically) adds
    // nothing its upper copy does not, and overlayfs refuses a lower dir
    // given twice.
    if (seen.insert(chain[i]).second) lowers.push_back(Lower{i, hex + "/fs"});
    if (HasOpaqueRoot(path)) {
      start = i;
      break;
    }
  }
  // The ':'-joined size of the lowers from chain index `from` up.
  auto names_from = [&lowers](std::size_t from) {
    std::vector<std::string> names;
    for (const Lower& l : lowers) {
      if (l.index >= from) names.push_back(l.name);
    }
    return names;
  };
  std::vector<std::string> all = names_from(0);
  if (JoinedSize(all) <= budget_bytes) return all;

  const std::size_t flat_size = kChainPrefix.size() + 64 + 3;  // "chain-<hex>/fs"
  for (std::size_t p = (start / kFlattenStride + 1) * kFlattenStride; p < chain.size();
       p += kFlattenStride) {
    std::vector<std::string> kept = names_from(p);
    if (JoinedSize(kept) + 1 + flat_size > budget_bytes) continue;
    MF_TRY(flat, Flatten(chain.first(p)));
    kept.push_back(std::move(flat));
    return kept;
  }
  return MakeError(ErrorKind::kInternal, "snapshot.mount.too_long",
                   std::to_string(chain.size()) + " layers do not fit in " +
                       std::to_string(budget_bytes) +
                       " bytes of lowerdir option, even with flattening");
}

Expected<std::string> Snapshotter::Flatten(std::span<const std::string> prefix) {
  const std::string name = std::string(kChainPrefix) + ChainId(prefix).substr(7);
  if (IsDir(dir_ + "/" + name + "/fs")) return name + "/fs";
  OverlayOptions ro;
  ro.base_dir = dir_;
  MF_TRY(lowers, Lowers(prefix, LowerdirBudget(ro)));
  if (lowers.size() == 1) return lowers[0];  // only one layer shows: nothing to merge

  MF_TRY(scratch, NewScratch());
  MF_TRY(fs_path, scratch.Mkdir("fs"));
  MF_TRY(merged, scratch.Mkdir("merged"));
  ro.lowers = std::move(lowers);
  {
    MF_TRY(mount, OverlayMount::Mount(merged, ro));
    MF_TRY_VOID(CopyTree(merged, fs_path)
                    .With("flattening " + std::to_string(prefix.size()) + " layers into " + name));
    MF_TRY_VOID(mount.Unmount());
  }
  MF_TRY_VOID(Publish(std::move(scratch), name));
  return name + "/fs";
}

}  // namespace manifold::worker
