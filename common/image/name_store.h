// The local image store's names: normalised references (`docker.io/library/
// busybox:latest`) to the digest of an image index or manifest, kept in
// `<state>/images.json`. Safe for several processes on one state dir: every
// change holds an exclusive flock and replaces the file atomically.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "common/base/expected.h"

namespace manifold::image {

struct NameRecord {
  std::string digest;      ///< "sha256:..." of the index or manifest
  std::string media_type;  ///< of that document
};

class NameStore {
 public:
  /// `state_dir` must exist. Errors: kResourceExhausted/kInternal on I/O.
  static Expected<NameStore> Open(const std::string& state_dir);

  Expected<std::optional<NameRecord>> Get(const std::string& name) const;
  Expected<std::map<std::string, NameRecord>> List() const;

  /// Reads, changes and writes the table under one exclusive lock:
  /// `change` gets the current table and edits it (or returns an error).
  Expected<void> Update(
      const std::function<Expected<void>(std::map<std::string, NameRecord>*)>& change);

 private:
  explicit NameStore(std::string dir) : dir_(std::move(dir)) {}
  Expected<std::map<std::string, NameRecord>> ReadLocked() const;
  std::string dir_;
};

}  // namespace manifold::image
