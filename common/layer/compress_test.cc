#include "common/layer/compress.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <random>
#include <string>

namespace manifold::layer {
namespace {

// Compressible but not trivial: words from a small vocabulary plus noise.
std::string SampleData(std::size_t size, unsigned seed = 1) {
  static const char* kWords[] = {"layer ", "digest ", "sha256 ", "manifold ", "/usr/bin ", "\n"};
  std::mt19937 rng(seed);
  std::string out;
  while (out.size() < size) {
    out += kWords[rng() % 6];
    if (rng() % 7 == 0) out.push_back(static_cast<char>(rng()));
  }
  out.resize(size);
  return out;
}

// Compresses `data`, writing it in slices of `write_chunk` bytes.
std::string Compress(Compression c, std::string_view data, std::size_t write_chunk = 1 << 20,
                     CompressOptions options = {}) {
  StringSink sink;
  auto compressor = NewCompressor(c, sink, options);
  EXPECT_TRUE(compressor.ok());
  for (std::size_t pos = 0; pos < data.size(); pos += write_chunk) {
    EXPECT_TRUE((*compressor)->Write(data.substr(pos, write_chunk)).ok());
  }
  EXPECT_TRUE((*compressor)->Finish().ok());
  return sink.data();
}

Expected<std::string> DecompressAuto(std::string_view data, std::size_t read_chunk = 4096,
                                     DecompressLimits limits = {}) {
  StringSource source(data, read_chunk);
  MF_TRY(decompressor, NewAutoDecompressor(source, limits));
  StringSink sink;
  MF_TRY_VOID(CopyStream(*decompressor, sink));
  return sink.data();
}

std::string GunzipWithZlib(const std::string& gz) {
  z_stream zs{};
  EXPECT_EQ(inflateInit2(&zs, 16 + MAX_WBITS), Z_OK);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  zs.avail_in = static_cast<uInt>(gz.size());
  std::string out;
  char buf[16384];
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof buf - zs.avail_out);
  }
  EXPECT_EQ(rc, Z_STREAM_END);
  inflateEnd(&zs);
  return out;
}

// gzip with a file name and an mtime in the header, as gzip(1) writes it.
std::string GzipWithZlib(const std::string& data, const char* name) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  gz_header header{};
  header.time = 1700000000;
  header.name = reinterpret_cast<Bytef*>(const_cast<char*>(name));
  header.os = 3;
  EXPECT_EQ(deflateSetHeader(&zs, &header), Z_OK);
  std::string out(deflateBound(&zs, static_cast<uLong>(data.size())) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

class CompressRoundTripTest : public ::testing::TestWithParam<Compression> {};

TEST_P(CompressRoundTripTest, RoundTripsAtManySizesAndChunkings) {
  for (std::size_t size : {0u, 1u, 1000u, 300000u, 1u << 20}) {
    std::string data = SampleData(size);
    for (std::size_t chunk : {7u, 65536u, 1u << 20}) {
      std::string packed = Compress(GetParam(), data, chunk);
      auto unpacked = DecompressAuto(packed, 1000);
      ASSERT_TRUE(unpacked.ok()) << unpacked.error().ToString();
      EXPECT_EQ(*unpacked, data) << CompressionName(GetParam()) << " size " << size;
    }
  }
}

TEST_P(CompressRoundTripTest, OutputIsIndependentOfWriteSizes) {
  std::string data = SampleData(700000, 7);
  std::string a = Compress(GetParam(), data, 1 << 20);
  std::string b = Compress(GetParam(), data, 4097);
  std::string c = Compress(GetParam(), data, 1);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
}

INSTANTIATE_TEST_SUITE_P(AllFormats, CompressRoundTripTest,
                         ::testing::Values(Compression::kNone, Compression::kGzip,
                                           Compression::kZstd),
                         [](const auto& p) { return std::string(CompressionName(p.param)); });

TEST(GzipTest, IgzipOutputIsReproducibleAndReadableByZlib) {
  std::string data = SampleData(500000, 3);
  std::string first = Compress(Compression::kGzip, data);
  std::string second = Compress(Compression::kGzip, data);
  EXPECT_EQ(first, second);
  EXPECT_LT(first.size(), data.size() / 2);
  // No name, no mtime, OS unknown: nothing host- or time-dependent.
  EXPECT_EQ(first.substr(0, 10), std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10));
  EXPECT_EQ(GunzipWithZlib(first), data);
}

TEST(GzipTest, ReadsZlibOutputWithNameAndConcatenatedMembers) {
  std::string a = SampleData(100000, 4);
  std::string b = SampleData(5000, 5);
  auto one = DecompressAuto(GzipWithZlib(a, "layer.tar"));
  ASSERT_TRUE(one.ok()) << one.error().ToString();
  EXPECT_EQ(*one, a);
  auto two = DecompressAuto(GzipWithZlib(a, "a") + Compress(Compression::kGzip, b), 333);
  ASSERT_TRUE(two.ok()) << two.error().ToString();
  EXPECT_EQ(*two, a + b);
}

TEST(GzipTest, DetectsCorruptionAndTruncation) {
  std::string data = SampleData(200000, 6);
  std::string packed = Compress(Compression::kGzip, data);

  std::string flipped = packed;
  flipped[flipped.size() - 6] ^= 0x01;  // inside the CRC32 trailer
  auto bad_crc = DecompressAuto(flipped);
  ASSERT_FALSE(bad_crc.ok());
  EXPECT_EQ(bad_crc.error().kind, ErrorKind::kIntegrity);
  EXPECT_EQ(bad_crc.error().code, "layer.gzip.corrupt");
  EXPECT_EQ(bad_crc.error().message, "gzip checksum mismatch");

  auto truncated = DecompressAuto(std::string_view(packed).substr(0, packed.size() / 2));
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.error().kind, ErrorKind::kIntegrity);
  EXPECT_EQ(truncated.error().code, "layer.gzip.truncated");
  EXPECT_EQ(truncated.error().message, "gzip stream ends before its trailer");
}

TEST(ZstdTest, DetectsCorruptionAndTruncation) {
  std::string data = SampleData(200000, 8);
  std::string packed = Compress(Compression::kZstd, data);

  auto truncated = DecompressAuto(std::string_view(packed).substr(0, packed.size() - 10));
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.error().kind, ErrorKind::kIntegrity);
  EXPECT_EQ(truncated.error().code, "layer.zstd.truncated");

  std::string garbage_tail = packed + "not a frame";
  auto corrupt = DecompressAuto(garbage_tail);
  ASSERT_FALSE(corrupt.ok());
  EXPECT_EQ(corrupt.error().kind, ErrorKind::kIntegrity);
  EXPECT_EQ(corrupt.error().code, "layer.zstd.corrupt");
}

TEST(DetectTest, RecognisesMagicBytes) {
  EXPECT_EQ(DetectCompression(Compress(Compression::kGzip, "x")), Compression::kGzip);
  EXPECT_EQ(DetectCompression(Compress(Compression::kZstd, "x")), Compression::kZstd);
  EXPECT_EQ(DetectCompression(std::string(512, '\0')), Compression::kNone);
  EXPECT_EQ(DetectCompression("\x1f"), Compression::kNone);
  EXPECT_EQ(DetectCompression(""), Compression::kNone);

  for (Compression c : {Compression::kNone, Compression::kGzip, Compression::kZstd}) {
    std::string packed = Compress(c, "hello layer");
    StringSource source(packed, 1);  // one byte per read: sniffing must loop
    auto d = NewAutoDecompressor(source);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ((*d)->compression(), c);
    StringSink sink;
    ASSERT_TRUE(CopyStream(**d, sink).ok());
    EXPECT_EQ(sink.data(), "hello layer");
  }
}

TEST(LimitsTest, StopsDecompressionBombs) {
  std::string zeros(4 << 20, '\0');
  for (Compression c : {Compression::kNone, Compression::kGzip, Compression::kZstd}) {
    DecompressLimits limits;
    limits.max_output_bytes = 1 << 20;
    auto out = DecompressAuto(Compress(c, zeros), 65536, limits);
    ASSERT_FALSE(out.ok()) << CompressionName(c);
    EXPECT_EQ(out.error().kind, ErrorKind::kSecurity);
    EXPECT_EQ(out.error().code, "layer.limit.size");
    EXPECT_EQ(out.error().message, "decompressed layer exceeds 1048576 bytes");
  }
}

TEST(LimitsTest, RejectsBadLevels) {
  StringSink sink;
  CompressOptions options;
  options.gzip_level = 9;
  auto gz = NewCompressor(Compression::kGzip, sink, options);
  ASSERT_FALSE(gz.ok());
  EXPECT_EQ(gz.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(gz.error().code, "layer.compress.level");
  EXPECT_EQ(gz.error().message, "gzip level 9 is not in 0..3");
  options.zstd_level = 1000;
  EXPECT_FALSE(NewCompressor(Compression::kZstd, sink, options).ok());
}

TEST(GzipTest, AllIsalLevelsRoundTrip) {
  std::string data = SampleData(300000, 9);
  for (int level = 0; level <= 3; ++level) {
    CompressOptions options;
    options.gzip_level = level;
    std::string packed = Compress(Compression::kGzip, data, 1 << 20, options);
    EXPECT_EQ(GunzipWithZlib(packed), data) << "level " << level;
  }
}

}  // namespace
}  // namespace manifold::layer
