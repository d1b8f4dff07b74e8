// Test helpers for common/cas: a scratch directory removed at the end, and
// the digest of a string.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <string_view>

#include "common/base/error.h"
#include "common/crypto/sha256.h"

namespace manifold::cas::testing {

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TEST_TMPDIR");
    std::string tmpl = std::string(base ? base : "/tmp") + "/mf_cas_XXXXXX";
    MF_ASSERT(::mkdtemp(tmpl.data()) != nullptr, "mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::string DigestOf(std::string_view content) {
  return "sha256:" + crypto::Sha256Hex(content);
}

}  // namespace manifold::cas::testing
