// Test helpers for common/http: self-signed certificates made at test time
// with OpenSSL (no key material checked in), and a PEM written to a temp file
// for ClientOptions::ca_file.
#pragma once

#include <string>
#include <vector>

namespace manifold::http::testing {

struct TestCert {
  std::string cert_pem;
  std::string key_pem;
};

/// A self-signed P-256 certificate, valid from a minute ago for an hour, with
/// the given subjectAltNames ("DNS:localhost", "IP:127.0.0.1"). Usable both
/// as a server certificate and as the only CA a client trusts.
TestCert MakeSelfSignedCert(const std::string& common_name, const std::vector<std::string>& sans);

/// A file holding `content` for the lifetime of the object.
class TempFile {
 public:
  explicit TempFile(const std::string& content);
  ~TempFile();
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace manifold::http::testing
