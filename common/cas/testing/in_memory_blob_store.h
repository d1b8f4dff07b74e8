// A BlobStore in a map, for tests of code that uses a BlobStore (STYLE.md
// section 8: fakes over mocks). Same contract and error texts as
// LocalBlobStore; writers buffer whole blobs in memory.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "common/cas/blob_store.h"

namespace manifold::cas {

class InMemoryBlobStore : public BlobStore {
 public:
  struct State {
    std::mutex mu;
    std::map<std::string, std::string> blobs;  ///< digest -> content
    std::set<std::string> quarantined;
  };

  InMemoryBlobStore();

  Expected<bool> Has(std::string_view digest) const override;
  Expected<std::uint64_t> Stat(std::string_view digest) const override;
  Expected<std::unique_ptr<BlobWriter>> BeginIngest(
      std::optional<std::string> expected_digest = std::nullopt,
      std::optional<std::uint64_t> expected_size = std::nullopt) override;
  Expected<std::unique_ptr<BlobReader>> OpenBlob(std::string_view digest, bool verify) override;
  Expected<void> Delete(std::string_view digest) override;
  Expected<std::vector<std::string>> List() const override;

  /// Test helpers. Put stores `content` unverified-by-ingest and returns its digest.
  std::string Put(std::string_view content);
  /// Flips the bits of byte `offset` of a stored blob (simulated bit-rot).
  void Corrupt(std::string_view digest, std::size_t offset = 0);
  bool IsQuarantined(std::string_view digest) const;

 private:
  std::shared_ptr<State> state_;  ///< shared with writers and readers
};

}  // namespace manifold::cas
