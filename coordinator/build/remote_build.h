// The client side of a farm build (`manifold build --coordinator HOST:PORT`,
// issue 6): the CLI scans the context, sends the coordinator the manifest
// and the Dockerfile, uploads only the files the coordinator asks for,
// prints the progress it streams (tagged with the worker of each step),
// then fetches the image index, manifests, configs and layers it lacks into
// the local store and writes the outputs as a local build would.
#pragma once
#include <ostream>
#include <string>

#include "common/base/expected.h"
#include "common/wire/cluster.h"
#include "coordinator/build/builder.h"

namespace manifold::coordinator {

struct RemoteTarget {
  std::string address;  ///< HOST:PORT of manifold-coordinator
  /// The join token; or, without it, `coordinator_key` and this client's
  /// own key pair (admitted by `manifold-coordinator allow-client`).
  std::string token;
  std::string coordinator_key;
  std::string client_key_file;
  /// The coordinator silent this long (never heard at all, or after a
  /// resubmission) is an error.
  std::chrono::milliseconds idle_timeout{120'000};
  /// Silent this long in the middle of a build: it restarted; submit again.
  std::chrono::milliseconds resubmit_after{10'000};
};

/// Errors: kInvalidInput "remote.target" (no token or key, bad address);
/// kDisconnected "remote.silent" when the coordinator does not answer; the
/// build's own error as the coordinator reports it.
Expected<BuildSummary> RunRemoteBuild(const RemoteTarget& target, const BuildRequest& request,
                                      std::ostream& out);

/// `manifold workers [rm|drain ID]`.
Expected<wire::WorkersReplyData> RemoteWorkers(const RemoteTarget& target,
                                               const wire::WorkersRequestData& request);

/// `manifold builds [cancel N]`.
Expected<wire::BuildsReplyData> RemoteBuilds(const RemoteTarget& target, const wire::BuildsRequestData& request);

/// This client's CURVE key pair (created on first use), for allow-client.
Expected<std::string> ClientPublicKey(const std::string& key_file);

}  // namespace manifold::coordinator
