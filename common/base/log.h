// Logging: spdlog behind a thin seam so call sites do not depend on its setup.
#pragma once

#include <string_view>

#include <spdlog/spdlog.h>

namespace manifold {

/// Sets the process-wide level from a name ("debug", "info", "warn", "error").
/// Returns false for an unknown name.
bool SetLogLevel(std::string_view name);

}  // namespace manifold

#define MF_LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define MF_LOG_INFO(...) SPDLOG_INFO(__VA_ARGS__)
#define MF_LOG_WARN(...) SPDLOG_WARN(__VA_ARGS__)
#define MF_LOG_ERROR(...) SPDLOG_ERROR(__VA_ARGS__)
