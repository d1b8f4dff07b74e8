// Resolving `user[:group]` against a rootfs's /etc/passwd and /etc/group, read
// through a RootDir (never the host's files), as Docker and BuildKit do: USER
// follows runc/libcontainer (GetExecUser), `COPY --chown` follows BuildKit's
// file op (readUser).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "common/base/expected.h"

namespace manifold::fs {
class RootDir;
}

namespace manifold::worker {

/// /etc/passwd and /etc/group are read up to this size; larger is
/// kInvalidInput "step.user.file_too_large".
inline constexpr std::size_t kMaxUserFileBytes = std::size_t{1} << 20;
/// Ids above this are refused (libcontainer's range): kInvalidInput "step.user.range".
inline constexpr std::uint32_t kMaxId = 2147483647u;

struct UidGid {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  friend bool operator==(const UidGid&, const UidGid&) = default;
};

/// USER semantics. `spec` is "user", "user:group", "uid", "uid:gid" (names or
/// numbers in either place). A numeric user needs no file: its gid is the
/// primary gid of a passwd entry with that uid if one exists, else 0. A named
/// user takes its primary gid when no group is given. Errors (kInvalidInput):
///   "step.user.unknown"  `unable to find user app: no matching entries in passwd file`
///   "step.group.unknown" `unable to find group staff: no matching entries in group file`
///   "step.user.range"    `uid 4294967296 is out of range 0-2147483647`
///   "step.user.empty"    `user spec is empty`
///   "step.user.file_too_large", and fs errors other than a missing file.
Expected<UidGid> ResolveUser(const fs::RootDir& rootfs, std::string_view spec);

/// `COPY --chown` semantics (BuildKit readUser): as ResolveUser, except that a
/// numeric user without a group gets gid = uid, without reading any file.
Expected<UidGid> ResolveChown(const fs::RootDir& rootfs, std::string_view spec);

/// Gids of the /etc/group entries that list `user` (a name, or a uid looked
/// up in passwd) as a member, in file order, without duplicates. A missing
/// file or unknown numeric uid gives an empty list.
Expected<std::vector<std::uint32_t>> AdditionalGids(const fs::RootDir& rootfs,
                                                    std::string_view user);

}  // namespace manifold::worker
