// Streaming SHA-256 over OpenSSL EVP. Every digest Manifold computes or checks
// (blobs, layers, cache keys) goes through here.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

typedef struct evp_md_ctx_st EVP_MD_CTX;

namespace manifold::crypto {

/// Incremental SHA-256. Feed bytes with Update(), read the result with
/// HexDigest() or Digest(); both finish the hash and reset the object to the
/// empty state, so it can be reused. Not thread-safe; cheap to move.
class Sha256 {
 public:
  static constexpr std::size_t kDigestBytes = 32;

  Sha256();
  ~Sha256();
  Sha256(Sha256&& other) noexcept;
  Sha256& operator=(Sha256&& other) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view data);

  /// Finishes: the 32 raw digest bytes.
  std::array<std::uint8_t, kDigestBytes> Digest();

  /// Finishes: 64 lowercase hex characters (no "sha256:" prefix).
  std::string HexDigest();

  /// Bytes fed since construction or the last finish.
  std::uint64_t bytes_hashed() const { return bytes_hashed_; }

 private:
  struct CtxFree {
    void operator()(EVP_MD_CTX* ctx) const;
  };
  void Reset();

  std::unique_ptr<EVP_MD_CTX, CtxFree> ctx_;
  std::uint64_t bytes_hashed_ = 0;
};

/// One-shot: lowercase hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

/// Lowercase hex of arbitrary bytes.
std::string HexEncode(const std::uint8_t* data, std::size_t size);

}  // namespace manifold::crypto
