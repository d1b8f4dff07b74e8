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

Expected<ChunkAnswer> DealerChannel::Receive(std::chrono::milliseconds timeout) {
  zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, timeout) <= 0)
    return MakeError(ErrorKind::kTransient, "wire.blob.timeout",
                     "no answer from the blob server in " + std::to_string(timeout.count()) + " ms");
  ChunkAnswer out;
  zmq::message_t m;
  if (!socket_.recv(m)) return MakeError(ErrorKind::kTransient, "wire.blob.timeout", "interrupted");
  out.header.assign(static_cast<const char*>(m.data()), m.size());
  bool more = m.more();
  if (more) {
    if (!socket_.recv(out.payload)) return MakeError(ErrorKind::kTransient, "wire.blob.timeout", "interrupted");
    more = out.payload.more();
  }
  while (more) {  // frames past the payload are not ours: drop them
    zmq::message_t extra;
    if (!socket_.recv(extra)) break;
    more = extra.more();
  }
  return out;
}

Expected<void> SendFrames(zmq::socket_t& socket, std::vector<zmq::message_t>& frames,
                          zmq::message_t* identity) {
  try {
    if (identity != nullptr) socket.send(*identity, zmq::send_flags::sndmore);
    for (std::size_t i = 0; i < frames.size(); ++i)
      socket.send(frames[i], i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  } catch (const zmq::error_t& e) {
    return MakeError(ErrorKind::kDisconnected, "wire.blob.send", e.what());
  }
  return Ok();
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
  std::map<std::uint64_t, zmq::message_t> early;  // chunks that overtook one
  while (!total || written < *total) {
    MF_TRY(answer, channel.Receive(options.idle_timeout));
    auto header = DecodeBlobChunk(answer.header);
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
    if (answer.payload.size() != expect_len)
      return MakeError(ErrorKind::kIntegrity, "wire.blob",
                       "chunk at " + std::to_string(header->offset) + " of " + digest + " has " +
                           std::to_string(answer.payload.size()) + " bytes, expected " +
                           std::to_string(expect_len));
    if (header->offset < written) continue;  // duplicate
    early.emplace(header->offset, std::move(answer.payload));
    while (!early.empty() && early.begin()->first == written) {
      MF_TRY_VOID(writer->Write(early.begin()->second.to_string_view()));
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

std::vector<zmq::message_t> AnswerBlobRequest(std::string_view request, const BlobPathFn& path_of) {
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
    std::vector<zmq::message_t> out;
    if (bytes.ok()) out.emplace_back(bytes->data(), bytes->size());
    return out;
  };
  auto path = path_of(req->digest);
  if (!path.ok()) return fail(std::move(path).error());
  fs::UniqueFd fd(::open(path->c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0)
    return fail(MakeError(ErrorKind::kInvalidInput, "cas.not_found", "blob " + req->digest + " is not here"));
  header.total_size = static_cast<std::uint64_t>(st.st_size);
  zmq::message_t payload(req->offset < header.total_size
                             ? std::min<std::uint64_t>(req->length, header.total_size - req->offset)
                             : 0);
  {
    char* data = static_cast<char*>(payload.data());
    std::size_t got = 0;
    while (got < payload.size()) {
      ssize_t n = ::pread(fd.get(), data + got, payload.size() - got,
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
  std::vector<zmq::message_t> out;
  out.emplace_back(bytes->data(), bytes->size());
  out.push_back(std::move(payload));
  return out;
}

}  // namespace manifold::wire
