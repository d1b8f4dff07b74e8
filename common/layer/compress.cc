#include "common/layer/compress.h"

#include <isa-l/igzip_lib.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <vector>

namespace manifold::layer {
namespace {

// Input is handed to the codec in blocks of exactly this size (the last one
// shorter), so output does not depend on how the caller sliced its writes.
constexpr std::size_t kBlockBytes = 128 * 1024;
constexpr std::size_t kOutBytes = 64 * 1024;
constexpr std::size_t kInBytes = 64 * 1024;
// Largest zstd window accepted when decoding (2^27 = 128 MiB, libzstd's own
// default): bounds decoder memory whatever the frame header asks for.
constexpr int kZstdWindowLogMax = 27;

// ID1 ID2, CM=deflate, FLG=0 (no name, comment, extra or header crc),
// MTIME=0, XFL=0, OS=255 (unknown): identical on every host.
constexpr std::array<std::uint8_t, 10> kGzipHeader = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};

Error CompressFailed(std::string message) {
  return MakeError(ErrorKind::kInternal, "layer.compress.failed", std::move(message));
}

// Accumulates writes into fixed blocks and hands full blocks to the codec.
class BlockCompressor : public Compressor {
 public:
  explicit BlockCompressor(ByteSink& out) : out_(out) { block_.reserve(kBlockBytes); }

  Expected<void> Write(std::string_view data) override {
    MF_ASSERT(!finished_, "Write after Finish");
    while (!data.empty()) {
      std::size_t n = std::min(data.size(), kBlockBytes - block_.size());
      block_.append(data.substr(0, n));
      data.remove_prefix(n);
      if (block_.size() == kBlockBytes) {
        MF_TRY_VOID(CompressBlock(block_, /*last=*/false));
        block_.clear();
      }
    }
    return Ok();
  }

  Expected<void> Finish() override {
    MF_ASSERT(!finished_, "Finish called twice");
    finished_ = true;
    MF_TRY_VOID(CompressBlock(block_, /*last=*/true));
    block_.clear();
    return Ok();
  }

 protected:
  virtual Expected<void> CompressBlock(std::string_view block, bool last) = 0;
  ByteSink& out_;
  std::array<std::uint8_t, kOutBytes> buffer_{};

 private:
  std::string block_;
  bool finished_ = false;
};

class GzipCompressor : public BlockCompressor {
 public:
  GzipCompressor(ByteSink& out, int level) : BlockCompressor(out) {
    isal_deflate_init(&stream_);
    static constexpr std::size_t kLevelBuf[] = {ISAL_DEF_LVL0_DEFAULT, ISAL_DEF_LVL1_DEFAULT,
                                                ISAL_DEF_LVL2_DEFAULT, ISAL_DEF_LVL3_DEFAULT};
    level_buf_.resize(kLevelBuf[level]);
    stream_.level = static_cast<std::uint32_t>(level);
    stream_.level_buf = level_buf_.empty() ? nullptr : level_buf_.data();
    stream_.level_buf_size = static_cast<std::uint32_t>(level_buf_.size());
    // We write the header ourselves; ISA-L appends the CRC32/ISIZE trailer.
    stream_.gzip_flag = IGZIP_GZIP_NO_HDR;
  }

 private:
  Expected<void> CompressBlock(std::string_view block, bool last) override {
    if (!header_written_) {
      MF_TRY_VOID(out_.Write(std::string_view(reinterpret_cast<const char*>(kGzipHeader.data()),
                                              kGzipHeader.size())));
      header_written_ = true;
    }
    stream_.next_in = reinterpret_cast<std::uint8_t*>(const_cast<char*>(block.data()));
    stream_.avail_in = static_cast<std::uint32_t>(block.size());
    stream_.end_of_stream = last ? 1 : 0;
    stream_.flush = NO_FLUSH;
    for (;;) {
      stream_.next_out = buffer_.data();
      stream_.avail_out = static_cast<std::uint32_t>(buffer_.size());
      int rc = isal_deflate(&stream_);
      if (rc != COMP_OK) return CompressFailed("isal_deflate failed with code " + std::to_string(rc));
      std::size_t produced = buffer_.size() - stream_.avail_out;
      if (produced > 0) {
        MF_TRY_VOID(out_.Write(std::string_view(reinterpret_cast<char*>(buffer_.data()), produced)));
      }
      bool drained = stream_.avail_in == 0 && stream_.avail_out != 0;
      if (drained && (!last || stream_.internal_state.state == ZSTATE_END)) return Ok();
    }
  }

  isal_zstream stream_{};
  std::vector<std::uint8_t> level_buf_;
  bool header_written_ = false;
};

struct ZstdCCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct ZstdDCtxFree {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

class ZstdCompressor : public BlockCompressor {
 public:
  ZstdCompressor(ByteSink& out, int level) : BlockCompressor(out), cctx_(ZSTD_createCCtx()) {
    MF_ASSERT(cctx_ != nullptr, "ZSTD_createCCtx failed");
    MF_ASSERT(!ZSTD_isError(ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_compressionLevel, level)));
    // Single-threaded (nbWorkers 0, the default) keeps output deterministic.
    MF_ASSERT(!ZSTD_isError(ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_checksumFlag, 1)));
  }

 private:
  Expected<void> CompressBlock(std::string_view block, bool last) override {
    ZSTD_inBuffer in{block.data(), block.size(), 0};
    const ZSTD_EndDirective mode = last ? ZSTD_e_end : ZSTD_e_continue;
    for (;;) {
      ZSTD_outBuffer out{buffer_.data(), buffer_.size(), 0};
      std::size_t remaining = ZSTD_compressStream2(cctx_.get(), &out, &in, mode);
      if (ZSTD_isError(remaining)) {
        return CompressFailed(std::string("zstd: ") + ZSTD_getErrorName(remaining));
      }
      if (out.pos > 0) {
        MF_TRY_VOID(out_.Write(std::string_view(static_cast<char*>(out.dst), out.pos)));
      }
      if (last ? remaining == 0 : in.pos == in.size) return Ok();
    }
  }

  std::unique_ptr<ZSTD_CCtx, ZstdCCtxFree> cctx_;
};

class PassthroughCompressor : public Compressor {
 public:
  explicit PassthroughCompressor(ByteSink& out) : out_(out) {}
  Expected<void> Write(std::string_view data) override { return out_.Write(data); }
  Expected<void> Finish() override { return Ok(); }

 private:
  ByteSink& out_;
};

// ---------------------------------------------------------------------------
// Decompression.

class LimitedDecompressor : public Decompressor {
 public:
  LimitedDecompressor(ByteSource& in, const DecompressLimits& limits) : in_(in), limits_(limits) {}

  Expected<std::size_t> Read(std::span<char> buffer) override {
    MF_ASSERT(!buffer.empty(), "Read needs room for at least one byte");
    MF_TRY(n, ReadDecoded(buffer));
    produced_ += n;
    if (produced_ > limits_.max_output_bytes) {
      return MakeError(ErrorKind::kSecurity, "layer.limit.size",
                       "decompressed layer exceeds " + std::to_string(limits_.max_output_bytes) +
                           " bytes");
    }
    return n;
  }

 protected:
  virtual Expected<std::size_t> ReadDecoded(std::span<char> buffer) = 0;

  // Refills in_buffer_ when empty; sets in_eof_ at the end of the input.
  Expected<void> Refill() {
    if (in_pos_ < in_size_ || in_eof_) return Ok();
    MF_TRY(n, in_.Read(std::span<char>(in_buffer_.data(), in_buffer_.size())));
    in_pos_ = 0;
    in_size_ = n;
    if (n == 0) in_eof_ = true;
    return Ok();
  }

  std::array<char, kInBytes> in_buffer_{};
  std::size_t in_pos_ = 0;
  std::size_t in_size_ = 0;
  bool in_eof_ = false;

 private:
  ByteSource& in_;
  DecompressLimits limits_;
  std::uint64_t produced_ = 0;
};

class PassthroughDecompressor : public LimitedDecompressor {
 public:
  using LimitedDecompressor::LimitedDecompressor;
  Compression compression() const override { return Compression::kNone; }

 private:
  Expected<std::size_t> ReadDecoded(std::span<char> buffer) override {
    MF_TRY_VOID(Refill());
    std::size_t n = std::min(buffer.size(), in_size_ - in_pos_);
    std::memcpy(buffer.data(), in_buffer_.data() + in_pos_, n);
    in_pos_ += n;
    return n;
  }
};

class GzipDecompressor : public LimitedDecompressor {
 public:
  GzipDecompressor(ByteSource& in, const DecompressLimits& limits)
      : LimitedDecompressor(in, limits), state_(std::make_unique<inflate_state>()) {
    isal_inflate_init(state_.get());
    state_->crc_flag = ISAL_GZIP;  // parse the header, verify CRC32 and ISIZE
  }
  Compression compression() const override { return Compression::kGzip; }

 private:
  static Error Corrupt(std::string message) {
    return MakeError(ErrorKind::kIntegrity, "layer.gzip.corrupt", std::move(message));
  }

  Expected<std::size_t> ReadDecoded(std::span<char> buffer) override {
    for (;;) {
      MF_TRY_VOID(Refill());
      if (state_->block_state == ISAL_BLOCK_FINISH) {
        // End of one gzip member. Concatenated members are one stream (as
        // gzip(1) and Go's gzip.Reader read them).
        if (in_eof_) return std::size_t{0};
        isal_inflate_reset(state_.get());
        state_->crc_flag = ISAL_GZIP;
      }
      if (in_eof_) {
        return MakeError(ErrorKind::kIntegrity, "layer.gzip.truncated",
                         "gzip stream ends before its trailer");
      }
      state_->next_in = reinterpret_cast<std::uint8_t*>(in_buffer_.data() + in_pos_);
      state_->avail_in = static_cast<std::uint32_t>(in_size_ - in_pos_);
      state_->next_out = reinterpret_cast<std::uint8_t*>(buffer.data());
      state_->avail_out = static_cast<std::uint32_t>(buffer.size());
      int rc = isal_inflate(state_.get());
      in_pos_ = in_size_ - state_->avail_in;
      switch (rc) {
        case ISAL_DECOMP_OK:
        case ISAL_END_INPUT:
        case ISAL_OUT_OVERFLOW:
          break;
        case ISAL_INVALID_WRAPPER:
          return Corrupt("not a gzip stream (bad header)");
        case ISAL_UNSUPPORTED_METHOD:
          return Corrupt("gzip stream uses an unsupported compression method");
        case ISAL_INCORRECT_CHECKSUM:
          return Corrupt("gzip checksum mismatch");
        default:
          return Corrupt("invalid deflate data (isal_inflate code " + std::to_string(rc) + ")");
      }
      std::size_t produced = buffer.size() - state_->avail_out;
      if (produced > 0) return produced;
    }
  }

  std::unique_ptr<inflate_state> state_;  // ~100 KiB: heap, not stack
};

class ZstdDecompressor : public LimitedDecompressor {
 public:
  ZstdDecompressor(ByteSource& in, const DecompressLimits& limits)
      : LimitedDecompressor(in, limits), dctx_(ZSTD_createDCtx()) {
    MF_ASSERT(dctx_ != nullptr, "ZSTD_createDCtx failed");
    MF_ASSERT(!ZSTD_isError(
        ZSTD_DCtx_setParameter(dctx_.get(), ZSTD_d_windowLogMax, kZstdWindowLogMax)));
  }
  Compression compression() const override { return Compression::kZstd; }

 private:
  Expected<std::size_t> ReadDecoded(std::span<char> buffer) override {
    for (;;) {
      MF_TRY_VOID(Refill());
      if (in_eof_ && !frame_open_) return std::size_t{0};
      ZSTD_inBuffer in{in_buffer_.data(), in_size_, in_pos_};
      ZSTD_outBuffer out{buffer.data(), buffer.size(), 0};
      std::size_t ret = ZSTD_decompressStream(dctx_.get(), &out, &in);
      if (ZSTD_isError(ret)) {
        return MakeError(ErrorKind::kIntegrity, "layer.zstd.corrupt",
                         std::string("zstd: ") + ZSTD_getErrorName(ret));
      }
      in_pos_ = in.pos;
      // ret == 0: a frame is complete and flushed; another may follow.
      frame_open_ = ret != 0;
      if (out.pos > 0) return out.pos;
      if (in_eof_ && frame_open_) {
        return MakeError(ErrorKind::kIntegrity, "layer.zstd.truncated",
                         "zstd stream ends inside a frame");
      }
    }
  }

  std::unique_ptr<ZSTD_DCtx, ZstdDCtxFree> dctx_;
  bool frame_open_ = true;  // an empty input is not a valid zstd stream
};

// Replays bytes read for sniffing, then continues with the source.
class PrefixedSource : public ByteSource {
 public:
  PrefixedSource(std::string prefix, ByteSource& rest) : prefix_(std::move(prefix)), rest_(rest) {}
  Expected<std::size_t> Read(std::span<char> buffer) override {
    if (pos_ < prefix_.size()) {
      std::size_t n = std::min(buffer.size(), prefix_.size() - pos_);
      std::memcpy(buffer.data(), prefix_.data() + pos_, n);
      pos_ += n;
      return n;
    }
    return rest_.Read(buffer);
  }

 private:
  std::string prefix_;
  std::size_t pos_ = 0;
  ByteSource& rest_;
};

class AutoDecompressor : public Decompressor {
 public:
  AutoDecompressor(std::unique_ptr<PrefixedSource> source, Compression c,
                   const DecompressLimits& limits)
      : source_(std::move(source)), inner_(NewDecompressor(c, *source_, limits)) {}
  Expected<std::size_t> Read(std::span<char> buffer) override { return inner_->Read(buffer); }
  Compression compression() const override { return inner_->compression(); }

 private:
  std::unique_ptr<PrefixedSource> source_;  // declared first: inner_ reads from it
  std::unique_ptr<Decompressor> inner_;
};

}  // namespace

const char* CompressionName(Compression c) {
  switch (c) {
    case Compression::kNone: return "none";
    case Compression::kGzip: return "gzip";
    case Compression::kZstd: return "zstd";
  }
  return "none";
}

Compression DetectCompression(std::string_view head) {
  if (head.size() >= 2 && head[0] == '\x1f' && head[1] == '\x8b') return Compression::kGzip;
  if (head.size() >= 4 && head.substr(0, 4) == std::string_view("\x28\xb5\x2f\xfd", 4)) {
    return Compression::kZstd;
  }
  return Compression::kNone;
}

Expected<std::unique_ptr<Compressor>> NewCompressor(Compression compression, ByteSink& out,
                                                    const CompressOptions& options) {
  switch (compression) {
    case Compression::kNone:
      return std::unique_ptr<Compressor>(std::make_unique<PassthroughCompressor>(out));
    case Compression::kGzip:
      if (options.gzip_level < ISAL_DEF_MIN_LEVEL || options.gzip_level > ISAL_DEF_MAX_LEVEL) {
        return MakeError(ErrorKind::kInvalidInput, "layer.compress.level",
                         "gzip level " + std::to_string(options.gzip_level) + " is not in 0..3");
      }
      return std::unique_ptr<Compressor>(
          std::make_unique<GzipCompressor>(out, options.gzip_level));
    case Compression::kZstd:
      if (options.zstd_level < ZSTD_minCLevel() || options.zstd_level > ZSTD_maxCLevel() ||
          options.zstd_level == 0) {
        return MakeError(ErrorKind::kInvalidInput, "layer.compress.level",
                         "zstd level " + std::to_string(options.zstd_level) + " is not in " +
                             std::to_string(ZSTD_minCLevel()) + ".." +
                             std::to_string(ZSTD_maxCLevel()) + " (0 excluded)");
      }
      return std::unique_ptr<Compressor>(
          std::make_unique<ZstdCompressor>(out, options.zstd_level));
  }
  MF_ASSERT(false, "unknown compression");
  return MakeError(ErrorKind::kInternal, "layer.compress.failed", "unreachable");
}

std::unique_ptr<Decompressor> NewDecompressor(Compression compression, ByteSource& in,
                                              const DecompressLimits& limits) {
  switch (compression) {
    case Compression::kGzip: return std::make_unique<GzipDecompressor>(in, limits);
    case Compression::kZstd: return std::make_unique<ZstdDecompressor>(in, limits);
    case Compression::kNone: break;
  }
  return std::make_unique<PassthroughDecompressor>(in, limits);
}

Expected<std::unique_ptr<Decompressor>> NewAutoDecompressor(ByteSource& in,
                                                            const DecompressLimits& limits) {
  std::string head(4, '\0');
  std::size_t have = 0;
  while (have < head.size()) {
    MF_TRY(n, in.Read(std::span<char>(head.data() + have, head.size() - have)));
    if (n == 0) break;
    have += n;
  }
  head.resize(have);
  Compression c = DetectCompression(head);
  auto source = std::make_unique<PrefixedSource>(std::move(head), in);
  return std::unique_ptr<Decompressor>(
      std::make_unique<AutoDecompressor>(std::move(source), c, limits));
}

}  // namespace manifold::layer
