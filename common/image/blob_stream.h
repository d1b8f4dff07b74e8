// Adapters between the content store's blob readers/writers and the layer
// module's byte streams, so layers stream straight into and out of the store.
#pragma once

#include "common/cas/blob_store.h"
#include "common/layer/byte_stream.h"

namespace manifold::image {

/// Writes into an ingest; the caller commits it.
class BlobSink : public layer::ByteSink {
 public:
  explicit BlobSink(cas::BlobWriter& w) : w_(w) {}
  Expected<void> Write(std::string_view data) override { return w_.Write(data); }

 private:
  cas::BlobWriter& w_;
};

/// Reads a stored blob (verified when the reader was opened with verify).
class BlobSource : public layer::ByteSource {
 public:
  explicit BlobSource(cas::BlobReader& r) : r_(r) {}
  Expected<std::size_t> Read(std::span<char> buffer) override { return r_.Read(buffer); }

 private:
  cas::BlobReader& r_;
};

}  // namespace manifold::image
