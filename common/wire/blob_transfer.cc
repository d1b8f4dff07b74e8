#include "common/wire/blob_transfer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "common/base/log.h"
#include "common/fs/unique_fd.h"
#include "common/wire/cluster.h"

namespace manifold::wire {

Expected<void> DealerChannel::Send(const std::string& request) {
  try {
    socket_.send(zmq::buffer(request), zmq::send_flags::none);
  } catch (const zmq::error_t& e) {
    return MakeError(ErrorKind::kDisconnected, "wire.blob.send", e.what());
  }
  return Ok();
}

Expected<std::pair<std::string, std::string>> DealerChannel::Receive(
    std::chrono::milliseconds timeout) {
  zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, timeout) <= 0)
    return MakeError(ErrorKind::kTransient, "wire.blob.timeout",
                     "no answer from the blob server in " + std::to_string(timeout.count()) + " ms");
  std::pair<std::string, std::string> out;
  zmq::message_t m;
  if (!socket_.recv(m)) return MakeError(ErrorKind::kTransient, "wire.blob.timeout", "interrupted");
  out.first.assign(static_cast<const char*>(m.data()), m.size());
  while (m.more()) {
    zmq::message_t part;
    if (!socket_.recv(part)) break;
    if (out.second.empty()) out.second.assign(static_cast<const char*>(part.data()), part.size());
    m = std::move(part);
  }
  return out;
}

Expected<std::uint64_t> FetchBlob(ChunkChannel& channel, const std::string& digest,
                                  cas::BlobStore& store, const FetchOptions& options) {
  const std::uint32_t chunk = std::max<std::uint32_t>(1, std::min(options.chunk_bytes, kMaxChunkBytes));
  const unsigned credit = std::max(1u, options.credit);
  auto request = [&](std::uint64_t offset) -> Expected<void> {
    MF_TRY(bytes, EncodeBlobRequest({digest, offset, chunk}));
    return channel.Send(bytes);
  };
  // The first answer tells the size; the window opens after it.
  MF_TRY_VOID(request(0));
  std::optional<std::uint64_t> total;
  std::unique_ptr<cas::BlobWriter> writer;
  std::uint64_t next_request = chunk;  // offset of the next request to send
  std::uint64_t written = 0;           // bytes handed to the writer, in order
  std::map<std::uint64_t, std::string> early;  // chunks that overtook one
  while (!total || written < *total) {
    MF_TRY(answer, channel.Receive(options.idle_timeout));
    auto header = DecodeBlobChunk(answer.first);
    if (!header.ok())
      return MakeError(ErrorKind::kInvalidInput, "wire.blob",
                       "malformed answer from the blob server: " + header.error().message);
    if (header->digest != digest) continue;  // a late answer to an earlier fetch
    if (header->error) return std::move(*header->error);
    if (!total) {
      total = header->total_size;
      MF_TRY(w, store.BeginIngest(digest, *total));
      writer = std::move(w);
      for (unsigned i = 1; i < credit && next_request < *total; ++i, next_request += chunk)
        MF_TRY_VOID(request(next_request));
    } else if (header->total_size != *total) {
      return MakeError(ErrorKind::kIntegrity, "wire.blob",
                       "the blob server changed the size of " + digest);
    }
    const std::uint64_t expect_len = header->offset < *total ? std::min<std::uint64_t>(chunk, *total - header->offset) : 0;
    if (header->offset >= *total && *total != 0) continue;
    if (answer.second.size() != expect_len)
      return MakeError(ErrorKind::kIntegrity, "wire.blob",
                       "chunk at " + std::to_string(header->offset) + " of " + digest + " has " +
                           std::to_string(answer.second.size()) + " bytes, expected " +
                           std::to_string(expect_len));
    if (header->offset < written) continue;  // duplicate
    early.emplace(header->offset, std::move(answer.second));
    while (!early.empty() && early.begin()->first == written) {
      MF_TRY_VOID(writer->Write(early.begin()->second));
      written += early.begin()->second.size();
      early.erase(early.begin());
      // One chunk consumed, one credit back.
      if (next_request < *total) {
        MF_TRY_VOID(request(next_request));
        next_request += chunk;
      }
    }
    if (*total == 0) break;
  }
  MF_TRY_VOID(writer->Commit());
  return written;
}

std::vector<std::string> AnswerBlobRequest(std::string_view request, const BlobPathFn& path_of) {
  auto req = DecodeBlobRequest(request);
  if (!req.ok()) {
    MF_LOG_WARN("dropped a malformed BlobRequest: {}", req.error().ToString());
    return {};
  }
  BlobChunkData header;
  header.digest = req->digest;
  header.offset = req->offset;
  auto fail = [&](Error e) {
    header.error = std::move(e);
    auto bytes = EncodeBlobChunk(header);
    return bytes.ok() ? std::vector<std::string>{*bytes} : std::vector<std::string>{};
  };
  auto path = path_of(req->digest);
  if (!path.ok()) return fail(std::move(path).error());
  fs::UniqueFd fd(::open(path->c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0)
    return fail(MakeError(ErrorKind::kInvalidInput, "cas.not_found", "blob " + req->digest + " is not here"));
  header.total_size = static_cast<std::uint64_t>(st.st_size);
  std::string payload;
  if (req->offset < header.total_size) {
    payload.resize(std::min<std::uint64_t>(req->length, header.total_size - req->offset));
    std::size_t got = 0;
    while (got < payload.size()) {
      ssize_t n = ::pread(fd.get(), payload.data() + got, payload.size() - got,
                          static_cast<off_t>(req->offset + got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0)
        return fail(MakeError(ErrorKind::kInternal, "cas.io",
                              "read " + *path + ": " + (n < 0 ? std::strerror(errno) : "short file")));
      got += static_cast<std::size_t>(n);
    }
  }
  auto bytes = EncodeBlobChunk(header);
  if (!bytes.ok()) return {};
  return {*bytes, std::move(payload)};
}

}  // namespace manifold::wire
