@0xaf5ae63aed6ff374;
# The farm's control and data messages (issue 6, DESIGN.md "Wire protocol",
# "Membership and security"): joining, heartbeats, the worker list, blob
# transfer in chunks with credit, and builds submitted by a client. Every one
# travels in a common.capnp Envelope (protocol version + body type id).

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("manifold::schema");

using Common = import "common.capnp";
using Scheduler = import "scheduler.capnp";
using Build = import "build.capnp";

# Worker -> coordinator, on a connection made with the join key (the token's
# secret): the CURVE handshake with that key is the proof of the token. The
# coordinator admits `publicKey` and answers JoinReply; the worker then
# reconnects with its own key.
struct Join {
  workerId @0 :Text;          # wanted id ("" = the coordinator picks)
  publicKey @1 :Text;         # Z85, 40 characters
  hostname @2 :Text;
  platforms @3 :List(Scheduler.WorkerPlatform);
  slots @4 :UInt32;
  peerEndpoint @5 :Text;      # tcp://HOST:PORT of the worker's blob server
  cpus @6 :UInt32;
  memoryBytes @7 :UInt64;
  softwareVersion @8 :Text;
}

struct JoinReply {
  workerId @0 :Text;
  heartbeatIntervalMs @1 :UInt32;
  error @2 :Common.Error;     # set when refused
}

# Worker -> coordinator every interval (own key). The reply carries the keys
# the worker's blob server admits (the coordinator's and every member's).
struct Heartbeat {
  workerId @0 :Text;
  platforms @1 :List(Scheduler.WorkerPlatform);
  slots @2 :UInt32;
  runningJobs @3 :List(Text);
  diskFreeBytes @4 :UInt64;
  loadMilli @5 :UInt32;       # 1-minute load average x 1000
  draining @6 :Bool;
  peerEndpoint @7 :Text;
  cpus @8 :UInt32;
  memoryBytes @9 :UInt64;
  hostname @10 :Text;
  degraded @11 :Text;
  # why the worker would rather stay idle (low disk, its last job ran out
  # of space); empty when healthy. Jobs go to healthy workers first.
  membersVersion @12 :UInt64;
  # version of the last full member list the worker holds (0: none)
  runningLeases @13 :List(JobLease);
  # the leases its slots are running: the coordinator cancels any it has
  # given to another worker since (a hung or partitioned worker coming back)
}

# One lease of a job: lease epochs are unique across the coordinator's
# builds, so (jobId, leaseEpoch) names one run of one job.
struct JobLease {
  jobId @0 :Text;
  leaseEpoch @1 :UInt64;
}

struct Member {
  workerId @0 :Text;
  publicKey @1 :Text;
  endpoint @2 :Text;
}

struct HeartbeatReply {
  members @0 :List(Member);
  # the whole member list when membersFull, else members that just joined
  # (a farm of N workers must not send N entries to N workers every beat)
  drain @1 :Bool;             # the operator asked this worker to drain
  error @2 :Common.Error;     # set when the worker is unknown or revoked
  membersFull @3 :Bool;
  membersVersion @4 :UInt64;  # version of the full list, when membersFull
  cancel @5 :List(JobLease);  # runs to stop now (their result is no longer wanted)
  cancelReason @6 :Text;
}

# Blob transfer ("file transfer with credit"): the fetcher keeps up to N
# requests outstanding; each answer is a BlobChunk followed by one raw frame
# of at most `length` bytes.
struct BlobRequest {
  digest @0 :Text;
  offset @1 :UInt64;
  length @2 :UInt32;
}

struct BlobChunk {
  digest @0 :Text;
  offset @1 :UInt64;
  totalSize @2 :UInt64;
  error @3 :Common.Error;     # set: no payload frame follows
}

# Client -> coordinator.
struct SubmitBuild {
  dockerfile @0 :Data;
  dockerfileName @1 :Text;    # as shown in errors
  dockerignore @2 :Data;
  hasDockerignore @3 :Bool;
  context @4 :List(Scheduler.ContextFile);
  platforms @5 :List(Common.Platform);
  target @6 :Text;
  buildArgs @7 :List(Build.BuildArg);
  tags @8 :List(Text);
  noCache @9 :Bool;
  noCacheFilter @10 :List(Text);
  secrets @11 :List(Scheduler.JobSecret);
  allow @12 :List(Text);
  hasSourceDateEpoch @13 :Bool;
  sourceDateEpoch @14 :Int64;
  compression @15 :Text;
  pull @16 :Bool;
  push @17 :Bool;
  # Images the client holds that the build names (bases, COPY --from):
  # name = the reference, value = the root's "mediaType digest size".
  # The coordinator fetches the blobs it lacks and uses these.
  images @18 :List(Build.BuildArg);
  progress @19 :Text;        # plain (default) or json: how progress lines are formatted
  noResult @20 :Bool;
  # the client will not fetch the image (a --push build with no -o output):
  # its layers stay on the workers, which push them to the registry
}

enum BuildEventKind {
  line @0;        # a progress line, already formatted
  done @1;        # the build finished: indexDigest, manifests, counts
  failed @2;      # error
  trace @3;       # text: the schedule as Chrome trace JSON
}

struct BuildEvent {
  kind @0 :BuildEventKind;
  text @1 :Data;
  error @2 :Common.Error;
  indexDigest @3 :Text;
  manifests @4 :List(Build.BuildArg);   # (platform, manifest digest)
  stepsExecuted @5 :UInt32;
  stepsCached @6 :UInt32;
  jobsRun @7 :UInt32;
  jobsCached @8 :UInt32;
  pushed @9 :List(Build.BuildArg);      # (reference, digest)
}

# Coordinator -> a worker's blob server (only the coordinator's key may ask):
# push these layers, which the worker holds, to the repository of
# `reference`, with the worker's own registry settings and credentials.
# Answered by PushBlobsReply once every layer is there or one failed.
struct PushBlobs {
  reference @0 :Text;
  layers @1 :List(Scheduler.Layer);
}

struct PushBlobsReply {
  error @0 :Common.Error;
  uploaded @1 :UInt32;
  mounted @2 :UInt32;
  existing @3 :UInt32;
}

# Client -> coordinator: stop the build this client submitted (Ctrl-C).
struct CancelBuild {
  reason @0 :Text;
}

# Client -> coordinator: list the builds running and queued, or cancel one.
struct BuildsRequest {
  action @0 :Text;            # "list", "cancel"
  number @1 :UInt32;          # the build to cancel
}

struct BuildInfo {
  number @0 :UInt32;
  state @1 :Text;             # running, queued
  platforms @2 :Text;         # comma-separated
  tags @3 :Text;              # comma-separated
  seconds @4 :UInt32;         # running (or queued) for
  runningJobs @5 :UInt32;
}

struct BuildsReply {
  builds @0 :List(BuildInfo);
  error @1 :Common.Error;
}

# Client -> coordinator: list workers, or act on one.
struct WorkersRequest {
  action @0 :Text;            # "list", "rm", "drain"
  workerId @1 :Text;
}

struct WorkerInfo {
  workerId @0 :Text;
  address @1 :Text;
  platforms @2 :List(Scheduler.WorkerPlatform);
  state @3 :Text;             # ready, busy, degraded, quarantined, draining, lost, revoked
  runningJobs @4 :UInt32;
  slots @5 :UInt32;
  cpus @6 :UInt32;
  memoryBytes @7 :UInt64;
  diskFreeBytes @8 :UInt64;
  hostname @9 :Text;
  note @10 :Text;             # why degraded or quarantined
}

struct WorkersReply {
  workers @0 :List(WorkerInfo);
  error @1 :Common.Error;
}
