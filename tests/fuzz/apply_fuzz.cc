// libFuzzer target for the layer door (RELIABILITY B16): random bytes (often
// tars, from the seeds) applied again and again onto one root. A sentinel
// directory beside the root must never change: nothing is written outside.
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/fs/root_dir.h"
#include "common/layer/apply.h"
#include "common/layer/byte_stream.h"

namespace {

namespace stdfs = std::filesystem;

struct World {
  std::string base, root, sentinel;
  struct stat sentinel_dir {}, sentinel_file {};
  int runs = 0;
};

World& Get() {
  static World* w = [] {
    auto* world = new World;
    char tmpl[] = "/tmp/manifold-apply-fuzz-XXXXXX";
    world->base = mkdtemp(tmpl);
    world->root = world->base + "/root";
    world->sentinel = world->base + "/sentinel";
    stdfs::create_directories(world->root);
    stdfs::create_directories(world->sentinel);
    std::ofstream(world->sentinel + "/canary") << "do not touch";
    stat(world->sentinel.c_str(), &world->sentinel_dir);
    stat((world->sentinel + "/canary").c_str(), &world->sentinel_file);
    std::atexit([] {
      std::error_code ec;
      stdfs::remove_all(Get().base, ec);
    });
    return world;
  }();
  return *w;
}

bool SentinelIntact(const World& w) {
  struct stat d {}, f {};
  if (stat(w.sentinel.c_str(), &d) != 0 || stat((w.sentinel + "/canary").c_str(), &f) != 0) return false;
  if (d.st_ino != w.sentinel_dir.st_ino || d.st_mode != w.sentinel_dir.st_mode ||
      d.st_nlink != w.sentinel_dir.st_nlink || d.st_mtim.tv_nsec != w.sentinel_dir.st_mtim.tv_nsec)
    return false;
  if (f.st_ino != w.sentinel_file.st_ino || f.st_mode != w.sentinel_file.st_mode ||
      f.st_size != w.sentinel_file.st_size || f.st_uid != w.sentinel_file.st_uid)
    return false;
  size_t entries = 0;
  for (auto& e : stdfs::directory_iterator(w.sentinel)) entries += 1 + 0 * e.is_regular_file();
  return entries == 1;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace manifold;
  World& w = Get();
  if (++w.runs % 500 == 0) {  // keep the root small
    std::error_code ec;
    stdfs::remove_all(w.root, ec);
    stdfs::create_directories(w.root);
  }
  auto root = fs::RootDir::Open(w.root);
  if (!root.ok()) __builtin_trap();
  layer::StringSource src(std::string_view(reinterpret_cast<const char*>(data), size));
  layer::ApplyOptions opts;
  opts.max_bytes = 64 << 20;
  opts.max_entries = 10000;
  (void)layer::Apply(*root, src, opts);
  if (!SentinelIntact(w)) __builtin_trap();
  return 0;
}
