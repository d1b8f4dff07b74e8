// diff + compress + store of a generated tree of about 1 GiB into a real
// content store: wall time and peak RSS, which must stay flat whatever the
// layer size (the pipeline streams through fixed buffers).
//
//   layer_bench [SIZE_MIB] [WORK_DIR]
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "common/cas/local_blob_store.h"
#include "common/layer/layer_writer.h"

namespace {

class BlobSink : public manifold::layer::ByteSink {
 public:
  explicit BlobSink(manifold::cas::BlobWriter& w) : w_(w) {}
  manifold::Expected<void> Write(std::string_view d) override { return w_.Write(d); }

 private:
  manifold::cas::BlobWriter& w_;
};

// Mixed content: half compressible text, half pseudo-random bytes, in files
// from 4 KiB to 64 MiB.
void MakeTree(const std::string& dir, size_t total) {
  std::mt19937_64 rng(42);
  std::string text;
  for (int i = 0; text.size() < (1 << 20); ++i) text += "line " + std::to_string(i) + " of some build output\n";
  size_t written = 0;
  for (int f = 0; written < total; ++f) {
    std::string sub = dir + "/d" + std::to_string(f % 37);
    std::filesystem::create_directories(sub);
    size_t size = f % 10 == 0 ? (64u << 20) : (4096u << (f % 12));
    size = std::min(size, total - written);
    std::ofstream out(sub + "/f" + std::to_string(f), std::ios::binary);
    std::string buf(1 << 20, '\0');
    for (size_t left = size; left > 0;) {
      size_t n = std::min(left, buf.size());
      if (f % 2) {
        for (size_t i = 0; i < n; i += 8) {
          uint64_t r = rng();
          memcpy(&buf[i], &r, std::min<size_t>(8, n - i));
        }
        out.write(buf.data(), static_cast<std::streamsize>(n));
      } else {
        out.write(text.data(), static_cast<std::streamsize>(std::min(n, text.size())));
      }
      left -= n;
    }
    written += size;
  }
}

}  // namespace

int main(int argc, char** argv) {
  size_t mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1024;
  std::string work = argc > 2 ? argv[2] : "/tmp/manifold-layer-bench";
  std::filesystem::remove_all(work);
  MakeTree(work + "/tree", mib << 20);
  struct rusage before {};
  getrusage(RUSAGE_SELF, &before);
  auto store = manifold::cas::LocalBlobStore::Open(work + "/store");
  auto t0 = std::chrono::steady_clock::now();
  auto writer = (*store)->BeginIngest();
  BlobSink sink(**writer);
  auto info = manifold::layer::WriteLayer(work + "/tree", sink, manifold::layer::Compression::kGzip, {});
  if (!info.ok()) {
    fprintf(stderr, "error: %s\n", info.error().ToString().c_str());
    return 1;
  }
  auto digest = (*writer)->Commit();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  struct rusage after {};
  getrusage(RUSAGE_SELF, &after);
  printf("tree %zu MiB -> layer %.1f MiB (%s) in %.2f s, %.0f MB/s; peak RSS %ld MiB\n", mib,
         static_cast<double>(info->size) / (1 << 20), digest.ok() ? digest->c_str() : "?", secs,
         static_cast<double>(info->uncompressed_size) / 1e6 / secs, after.ru_maxrss / 1024);
  std::filesystem::remove_all(work);
  return 0;
}
