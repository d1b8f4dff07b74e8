// Docker credential helpers: `docker-credential-NAME get|store|erase`, the
// server URL or a JSON document on stdin, JSON on stdout
// (github.com/docker/docker-credential-helpers protocol).
#pragma once

#include <functional>
#include <string>

#include "common/base/expected.h"

namespace manifold::registry {

struct HelperOutput {
  int exit_code = 0;
  std::string out;  ///< stdout, at most 64 KiB
};

/// Runs `docker-credential-<name> <action>` with `input` on stdin. Tests
/// substitute a function; the real one is RunCredentialHelper.
using CredentialHelperRunner = std::function<Expected<HelperOutput>(
    const std::string& name, const std::string& action, const std::string& input)>;

/// Finds docker-credential-<name> in the colon-separated `search_path` (as
/// $PATH) and runs it with a clean stdin/stdout pipe; stderr is inherited.
/// Errors: kInvalidInput "registry.cred_helper" when the program is missing
/// or `name` is not a plain word, kInternal "registry.cred_helper" when it
/// cannot be started.
Expected<HelperOutput> RunCredentialHelper(const std::string& name, const std::string& action,
                                           const std::string& input,
                                           const std::string& search_path);

/// A runner searching $PATH.
CredentialHelperRunner DefaultCredentialHelperRunner();

}  // namespace manifold::registry
