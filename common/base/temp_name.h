// Names for temporary files that are renamed into place: unique across
// processes (pid), threads and calls, so concurrent writers of the same
// final name never share a temporary.
#pragma once
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

namespace manifold {

/// ".tmp.<pid>.<thread hash>.<counter>".
inline std::string UniqueTempSuffix() {
  static std::atomic<std::uint64_t> counter{0};
  return ".tmp." + std::to_string(::getpid()) + "." +
         std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id()) % 1000000007) +
         "." + std::to_string(counter.fetch_add(1));
}

}  // namespace manifold
