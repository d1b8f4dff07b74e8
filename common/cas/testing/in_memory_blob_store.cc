#include "common/cas/testing/in_memory_blob_store.h"

#include <algorithm>

#include "common/cas/digest.h"
#include "common/crypto/sha256.h"

namespace manifold::cas {
namespace {

using StatePtr = std::shared_ptr<InMemoryBlobStore::State>;

class MemoryWriter final : public BlobWriter {
 public:
  MemoryWriter(StatePtr state, std::optional<std::string> expected_digest,
               std::optional<std::uint64_t> expected_size)
      : state_(std::move(state)),
        expected_digest_(std::move(expected_digest)),
        expected_size_(expected_size) {}

  Expected<void> Write(std::string_view data) override {
    if (closed_) return WriterClosedError();
    if (expected_size_ && data_.size() + data.size() > *expected_size_) {
      Error error = SizeMismatchError(*expected_size_, data_.size() + data.size(), true);
      Abort();
      return error;
    }
    data_.append(data);
    return Ok();
  }

  Expected<std::string> Commit() override {
    if (closed_) return WriterClosedError();
    closed_ = true;
    if (expected_size_ && data_.size() != *expected_size_) {
      return SizeMismatchError(*expected_size_, data_.size(), /*at_least=*/false);
    }
    std::string digest = DigestFromHex(crypto::Sha256Hex(data_));
    if (expected_digest_ && *expected_digest_ != digest) {
      return DigestMismatchError(*expected_digest_, digest);
    }
    std::lock_guard lock(state_->mu);
    state_->blobs.emplace(digest, std::move(data_));  // an existing copy wins
    return digest;
  }

  void Abort() override {
    closed_ = true;
    data_.clear();
  }
  std::uint64_t bytes_written() const override { return data_.size(); }

 private:
  StatePtr state_;
  std::optional<std::string> expected_digest_;
  std::optional<std::uint64_t> expected_size_;
  std::string data_;
  bool closed_ = false;
};

class MemoryReader final : public BlobReader {
 public:
  MemoryReader(StatePtr state, std::string digest, std::string data, bool verify)
      : state_(std::move(state)), digest_(std::move(digest)), data_(std::move(data)),
        verify_(verify) {}

  Expected<std::size_t> Read(std::span<char> buffer) override {
    if (error_) return *error_;
    std::size_t n = std::min(buffer.size(), data_.size() - pos_);
    std::copy_n(data_.data() + pos_, n, buffer.data());
    pos_ += n;
    if (n > 0 || !verify_ || verified_) return n;
    verified_ = true;
    std::string actual = DigestFromHex(crypto::Sha256Hex(data_));
    if (actual == digest_) return std::size_t{0};
    std::lock_guard lock(state_->mu);
    std::string fate = "it is no longer in the store";
    auto it = state_->blobs.find(digest_);
    if (it != state_->blobs.end() && it->second == data_) {
      state_->blobs.erase(it);
      state_->quarantined.insert(digest_);
      fate = "moved to quarantine";
    } else if (it != state_->blobs.end()) {
      fate = "a newer copy is in the store";
    }
    error_ = CorruptError(digest_, actual, fate);
    return *error_;
  }

  std::uint64_t size() const override { return data_.size(); }

 private:
  StatePtr state_;
  std::string digest_;
  std::string data_;
  bool verify_;
  std::size_t pos_ = 0;
  bool verified_ = false;
  std::optional<Error> error_;
};

}  // namespace

InMemoryBlobStore::InMemoryBlobStore() : state_(std::make_shared<State>()) {}

Expected<bool> InMemoryBlobStore::Has(std::string_view digest) const {
  MF_TRY_VOID(DigestHex(digest));
  std::lock_guard lock(state_->mu);
  return state_->blobs.count(std::string(digest)) > 0;
}

Expected<std::uint64_t> InMemoryBlobStore::Stat(std::string_view digest) const {
  MF_TRY_VOID(DigestHex(digest));
  std::lock_guard lock(state_->mu);
  auto it = state_->blobs.find(std::string(digest));
  if (it == state_->blobs.end()) return NotFoundError(digest);
  return static_cast<std::uint64_t>(it->second.size());
}

Expected<std::unique_ptr<BlobWriter>> InMemoryBlobStore::BeginIngest(
    std::optional<std::string> expected_digest, std::optional<std::uint64_t> expected_size) {
  if (expected_digest) MF_TRY_VOID(DigestHex(*expected_digest));
  return std::make_unique<MemoryWriter>(state_, std::move(expected_digest), expected_size);
}

Expected<std::unique_ptr<BlobReader>> InMemoryBlobStore::OpenBlob(std::string_view digest,
                                                                  bool verify) {
  MF_TRY_VOID(DigestHex(digest));
  std::lock_guard lock(state_->mu);
  auto it = state_->blobs.find(std::string(digest));
  if (it == state_->blobs.end()) return NotFoundError(digest);
  return std::make_unique<MemoryReader>(state_, it->first, it->second, verify);
}

Expected<void> InMemoryBlobStore::Delete(std::string_view digest) {
  MF_TRY_VOID(DigestHex(digest));
  std::lock_guard lock(state_->mu);
  state_->blobs.erase(std::string(digest));
  return Ok();
}

Expected<std::vector<std::string>> InMemoryBlobStore::List() const {
  std::lock_guard lock(state_->mu);
  std::vector<std::string> out;
  for (const auto& [digest, content] : state_->blobs) out.push_back(digest);
  return out;
}

std::string InMemoryBlobStore::Put(std::string_view content) {
  std::string digest = DigestFromHex(crypto::Sha256Hex(content));
  std::lock_guard lock(state_->mu);
  state_->blobs.emplace(digest, std::string(content));
  return digest;
}

void InMemoryBlobStore::Corrupt(std::string_view digest, std::size_t offset) {
  std::lock_guard lock(state_->mu);
  auto it = state_->blobs.find(std::string(digest));
  MF_ASSERT(it != state_->blobs.end() && offset < it->second.size(), "no such blob byte");
  it->second[offset] = static_cast<char>(~it->second[offset]);
}

bool InMemoryBlobStore::IsQuarantined(std::string_view digest) const {
  std::lock_guard lock(state_->mu);
  return state_->quarantined.count(std::string(digest)) > 0;
}

}  // namespace manifold::cas
