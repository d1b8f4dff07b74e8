// Compression of a realistic tree, igzip (our gzip) against zlib level 6 on
// the same bytes, in one run: throughput and output size. The input is a tar
// of a real directory (default /usr, capped), made with our own tree differ.
//
//   compress_bench [DIR] [MAX_MIB]
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/layer/compress.h"
#include "common/layer/diff.h"
#include "common/layer/tar_writer.h"

namespace {

using Clock = std::chrono::steady_clock;

// Collects the tar, stopping (quietly) once `cap` bytes are held.
class CappedSink : public manifold::layer::ByteSink {
 public:
  explicit CappedSink(size_t cap) : cap_(cap) {}
  manifold::Expected<void> Write(std::string_view d) override {
    if (data_.size() >= cap_)
      return manifold::MakeError(manifold::ErrorKind::kResourceExhausted, "bench.cap", "cap reached");
    data_.append(d.substr(0, cap_ - data_.size()));
    return manifold::Ok();
  }
  std::string data_;

 private:
  size_t cap_;
};

class CountSink : public manifold::layer::ByteSink {
 public:
  manifold::Expected<void> Write(std::string_view d) override {
    bytes += d.size();
    return manifold::Ok();
  }
  size_t bytes = 0;
};

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

size_t Zlib(const std::string& in, int level) {
  z_stream zs{};
  deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(1 << 20, '\0');
  size_t total = 0;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  int rc;
  do {
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    rc = deflate(&zs, Z_FINISH);
    total += out.size() - zs.avail_out;
  } while (rc == Z_OK || rc == Z_BUF_ERROR);
  deflateEnd(&zs);
  return total;
}

size_t Ours(const std::string& in, manifold::layer::Compression c, int level) {
  CountSink out;
  manifold::layer::CompressOptions opts;
  opts.gzip_level = level;
  opts.zstd_level = level;
  auto comp = manifold::layer::NewCompressor(c, out, opts);
  for (size_t off = 0; off < in.size(); off += 1 << 20)
    (void)(*comp)->Write(std::string_view(in).substr(off, 1 << 20));
  (void)(*comp)->Finish();
  return out.bytes;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : "/usr";
  size_t cap = (argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 512) << 20;
  CappedSink tar_bytes(cap);
  manifold::layer::TarWriter tar(tar_bytes);
  (void)manifold::layer::WriteTree(dir, tar, {});
  const std::string& in = tar_bytes.data_;
  double mb = static_cast<double>(in.size()) / 1e6;
  printf("input: tar of %s, %.1f MB\n", dir.c_str(), mb);
  printf("%-16s %10s %10s %8s\n", "codec", "MB/s", "out MB", "ratio");
  struct Row { const char* name; double secs; size_t out; };
  auto run = [&](const char* name, auto fn) {
    auto t0 = Clock::now();
    size_t out = fn();
    double s = Seconds(t0, Clock::now());
    printf("%-16s %10.1f %10.1f %8.3f\n", name, mb / s, static_cast<double>(out) / 1e6,
           static_cast<double>(out) / static_cast<double>(in.size()));
    return Row{name, s, out};
  };
  Row zlib6 = run("zlib -6", [&] { return Zlib(in, 6); });
  run("igzip -1", [&] { return Ours(in, manifold::layer::Compression::kGzip, 1); });
  Row igz3 = run("igzip -3 (ours)", [&] { return Ours(in, manifold::layer::Compression::kGzip, 3); });
  
  run("zstd -3", [&] { return Ours(in, manifold::layer::Compression::kZstd, 3); });
  printf("igzip -3 (our default) vs zlib -6: %.2fx the speed, %+.1f%% size\n", zlib6.secs / igz3.secs,
         100.0 * (static_cast<double>(igz3.out) / static_cast<double>(zlib6.out) - 1));
  return 0;
}
