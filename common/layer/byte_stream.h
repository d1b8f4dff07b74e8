// The two byte-stream seams of common/layer: a sink that accepts bytes and a
// source that yields them. Compressors, decompressors and the tar reader are
// chained through these, each holding a fixed-size buffer, so memory stays
// bounded whatever the size of a layer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/base/expected.h"

namespace manifold::layer {

class ByteSink {
 public:
  virtual ~ByteSink() = default;
  /// Consumes all of `data` or fails.
  virtual Expected<void> Write(std::string_view data) = 0;
};

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  /// Fills up to buffer.size() bytes; returns how many, 0 only at the end.
  /// Short reads are allowed.
  virtual Expected<std::size_t> Read(std::span<char> buffer) = 0;
};

/// Collects everything written into a string (tests, small blobs).
class StringSink : public ByteSink {
 public:
  Expected<void> Write(std::string_view data) override;
  const std::string& data() const { return data_; }

 private:
  std::string data_;
};

/// Yields a view's bytes, at most `max_chunk` per Read() (to exercise short
/// reads). The viewed bytes must outlive the source.
class StringSource : public ByteSource {
 public:
  explicit StringSource(std::string_view data, std::size_t max_chunk = SIZE_MAX)
      : data_(data), max_chunk_(max_chunk) {}
  Expected<std::size_t> Read(std::span<char> buffer) override;

 private:
  std::string_view data_;
  std::size_t max_chunk_;
};

/// Writes to a file descriptor it does not own (retries EINTR and short writes).
/// Errors: kResourceExhausted "io.write" when the disk is full, else kInvalidInput.
class FdSink : public ByteSink {
 public:
  explicit FdSink(int fd) : fd_(fd) {}
  Expected<void> Write(std::string_view data) override;

 private:
  int fd_;
};

/// Reads from a file descriptor it does not own (retries EINTR).
class FdSource : public ByteSource {
 public:
  explicit FdSource(int fd) : fd_(fd) {}
  Expected<std::size_t> Read(std::span<char> buffer) override;

 private:
  int fd_;
};

/// Pumps `from` into `to` through a 64 KiB buffer; returns the bytes copied.
Expected<std::uint64_t> CopyStream(ByteSource& from, ByteSink& to);

}  // namespace manifold::layer
