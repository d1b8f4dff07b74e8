// `RUN --mount=...` specs, parsed as BuildKit's instructions.ParseMount does.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "common/base/expected.h"

namespace manifold::dockerfile {

struct MountSpec {
  std::string type = "bind";  ///< bind, cache, tmpfs, secret, ssh
  std::string from;
  std::string source;
  std::string target;
  std::string id;
  std::string sharing;        ///< cache: shared (default), private, locked
  bool readonly = true;
  bool required = false;
  int64_t size_bytes = 0;     ///< tmpfs size, 0 = unlimited
  std::optional<uint32_t> mode, uid, gid;
  std::optional<std::string> env;  ///< secret: expose as this environment variable
};

/// Expands one value; nullptr means "not expanded yet": values are skipped and
/// only what can be checked without expansion is checked.
using WordExpander = std::function<Expected<std::string>(const std::string&)>;

/// Parses one --mount value (CSV of key=value). kInvalidInput errors carry
/// BuildKit's wording.
Expected<MountSpec> ParseMount(const std::string& spec, const WordExpander* expander);

/// ParseMount of a spec whose values were already expanded (the planner's
/// output): every check and default applies, nothing is expanded again.
Expected<MountSpec> ParseExpandedMount(const std::string& spec);

/// Splits one CSV record as Go's encoding/csv does (quotes, "" escapes).
Expected<std::vector<std::string>> SplitCsv(const std::string& record);

/// docker/go-units RAMInBytes ("64m", "1g", "512k", "1024").
std::optional<int64_t> ParseRamBytes(const std::string& s);

}  // namespace manifold::dockerfile
