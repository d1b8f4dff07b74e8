// `ADD <url>`: the file is fetched over HTTP(S) by the worker (common/http),
// checked against `--checksum` when given, and stored like Docker does: mode
// 0600, mtime from Last-Modified, never extracted. The coordinator keys the
// step on the URL plus the checksum, or, without one, on what the server
// says identifies the content (ETag, Last-Modified, length) or its digest.
#pragma once
#include <string>

#include "common/base/expected.h"

namespace manifold::http {

bool IsAddUrl(const std::string& source);

/// The file name a URL is saved under when the destination is a directory:
/// the last component of its path ("download" when there is none).
std::string UrlFileName(const std::string& url);

struct Downloaded {
  std::string path;    ///< into_dir/<UrlFileName>
  std::string digest;  ///< "sha256:<hex>" of the body
};

/// GETs `url` into `into_dir` (must exist). Errors: the HTTP client's
/// (kTransient "http.connect"/"http.timeout", kSecurity "http.tls", ...),
/// kInvalidInput "step.add.status" ("failed to fetch <url>: 404 Not Found"),
/// kInvalidInput "step.add.checksum_format", kIntegrity "step.add.checksum"
/// ("digest mismatch for <url>: want sha256:..., got sha256:...").
Expected<Downloaded> DownloadUrl(const std::string& url, const std::string& checksum,
                                 const std::string& into_dir);

/// What identifies the content behind `url` for a cache key: from a HEAD,
/// "etag=...;last-modified=...;length=..." when the server gives an ETag or
/// Last-Modified, else the body's digest from a GET.
Expected<std::string> UrlFingerprint(const std::string& url);

}  // namespace manifold::http
