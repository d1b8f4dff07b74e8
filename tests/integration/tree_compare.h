// Compares two directory trees the way an image user would: types, modes,
// owners, contents, symlink targets, xattrs and hardlink groups. Used to check
// that what umoci unpacks from our export equals what we imported.
#pragma once

#include <string>
#include <vector>

namespace manifold::testing {

struct TreeCompareOptions {
  bool compare_mtime = false;
  bool compare_xattrs = true;
};

/// Returns the differences, one line each ("etc/passwd: mode 0644 != 0600");
/// empty when the trees are the same.
std::vector<std::string> CompareTrees(const std::string& a, const std::string& b,
                                      const TreeCompareOptions& opts = {});

/// Runs `cmd` with /bin/sh, returns its exit status and fills `out` with stdout+stderr.
int RunCommand(const std::string& cmd, std::string* out);

/// A whole file ("" when it cannot be read).
std::string ReadFile(const std::string& path);
/// Writes `data` to `path`, creating its parent directories.
void WriteFile(const std::string& path, const std::string& data);

/// A fresh temporary directory, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace manifold::testing
