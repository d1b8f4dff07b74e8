// Dockerfile instructions that change only the image config (ENV, LABEL,
// ARG, EXPOSE, VOLUME, USER, WORKDIR, CMD, ENTRYPOINT, SHELL, HEALTHCHECK,
// STOPSIGNAL, ONBUILD, MAINTAINER), and the environment helpers RUN shares.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "common/base/expected.h"
#include "common/dockerfile/instruction.h"
#include "common/oci/image_config.h"

namespace manifold::worker {

/// Applies `in` to `config` (and the ARGs in scope, `args`; `cmd_set`: a CMD
/// was set in this stage, which an ENTRYPOINT then keeps). `build_args` are
/// the job's values, which override ARG defaults. Returns the history entry's
/// created_by. Errors: kInternal "step.unexpected" for RUN/COPY/ADD/FROM.
Expected<std::string> ApplyMetadata(const dockerfile::Instruction& in,
                                    const std::map<std::string, std::string>& build_args,
                                    oci::ImageConfig& config, std::map<std::string, std::string>& args,
                                    bool& cmd_set);

/// ARG: each declared name gets the build arg's value, else its default, else
/// leaves scope.
void TrackArgs(const dockerfile::Instruction& in,
               const std::map<std::string, std::string>& build_args,
               std::map<std::string, std::string>& args);

/// The value of `key` in "KEY=value" entries ("" when absent).
std::string EnvValue(const std::vector<std::string>& env, const std::string& key);
/// Sets (replacing in place) or appends "KEY=value".
void SetEnv(std::vector<std::string>& env, const std::string& key, const std::string& value);
/// The image's SHELL, else /bin/sh -c.
std::vector<std::string> ShellOf(const oci::ImageConfig& c);
std::string Join(const std::vector<std::string>& v, const std::string& sep = " ");

}  // namespace manifold::worker
