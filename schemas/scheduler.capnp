@0xa9119e5cd14fd3ee;
# Coordinator <-> worker control messages. Each travels as the body of a
# common.capnp Envelope. Append-only: never renumber; add at the end.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("manifold::schema");

using Common = import "common.capnp";

struct WorkerPlatform {
  platform @0 :Common.Platform;
  emulated @1 :Bool;
  # true when served through binfmt_misc + QEMU (5-20x slower)
}

struct Register {
  # Worker -> coordinator, first message after connecting.
  workerId @0 :Text;
  hostname @1 :Text;
  platforms @2 :List(WorkerPlatform);
  # native platforms first
  slots @3 :UInt32;
  # jobs it runs at once
  peerEndpoint @4 :Text;
  # where its blob server listens ("tcp://10.0.0.7:7701")
  joinProof @5 :Data;
  # proof that it holds the join token's secret
  softwareVersion @6 :Text;
}

struct RegisterReply {
  accepted @0 :Bool;
  heartbeatIntervalMs @1 :UInt32;
  error @2 :Common.Error;
  # set when not accepted
}

struct Lease {
  jobId @0 :Text;
  leaseEpoch @1 :UInt64;
}


struct BaseImage {
  union {
    scratch @0 :Void;
    image @1 :ImageRef;
    stage @2 :Text;
    # result of another stage of the same build (its final cache key's layers)
  }
}

struct ImageRef {
  reference @0 :Text;
  # as written after expansion ("docker.io/library/alpine:3.19")
  manifestDigest @1 :Common.Digest;
  # resolved by the coordinator for this job's platform
}

struct Flag {
  name @0 :Text;
  # "from", "chown", "mount", ...
  value @1 :Text;
}

struct Instruction {
  index @0 :UInt32;
  # step number inside the stage, 0-based
  line @1 :UInt32;
  # Dockerfile line, 1-based
  command @2 :Text;
  # upper case: "RUN", "COPY", "ENV", ...
  args @3 :List(Text);
  # after variable expansion
  flags @4 :List(Flag);
  cacheKey @5 :Common.Digest;
  # planned at the coordinator; may be refined on the worker
  original @6 :Text;
  # source text, for progress display only

  # Appended: the rest of the typed instruction (dockerfile::Instruction), so
  # that every field reaches the worker. `command` carries the Cmd, `args` the
  # instruction's args; `flags` is not used by these fields.
  endLine @7 :UInt32;
  prependShell @8 :Bool;
  # shell form (RUN/CMD/ENTRYPOINT/HEALTHCHECK)
  heredocs @9 :List(Heredoc);
  # RUN/CMD/ENTRYPOINT heredocs
  keyValues @10 :List(KeyValue);
  # ENV/LABEL
  argDecls @11 :List(ArgDecl);
  # ARG
  fromBase @12 :Text;
  # FROM: base as written
  stageName @13 :Text;
  # FROM: lowercase stage name, empty when unnamed
  fromPlatform @14 :Text;
  # FROM --platform as written
  mounts @15 :List(Text);
  # RUN --mount values as written
  network @16 :Text;
  # RUN --network: "", default, none, host
  security @17 :Text;
  # RUN --security: "", sandbox, insecure
  heredocSources @18 :List(HeredocSource);
  # COPY/ADD sources given as heredocs
  dest @19 :Text;
  copyFrom @20 :Text;
  # COPY --from
  chown @21 :Text;
  chmod @22 :Text;
  checksum @23 :Text;
  # ADD --checksum
  link @24 :Bool;
  parents @25 :Bool;
  keepGitDir @26 :Bool;
  excludes @27 :List(Text);
  healthTest @28 :List(Text);
  # HEALTHCHECK test as in the image config
  intervalNs @29 :Int64;
  timeoutNs @30 :Int64;
  startPeriodNs @31 :Int64;
  startIntervalNs @32 :Int64;
  retries @33 :Int32;
  onbuildExpression @34 :Text;
  # ONBUILD: the trigger as stored in the image config
  sub @35 :List(Instruction);
  # ONBUILD: the trigger's parsed form as its only element; empty otherwise. A
  # list, not a struct field: the codec's schema walk reads unset struct fields
  # as their defaults, so a struct that contains itself would never end.
}

struct Heredoc {
  # A RUN/CMD/ENTRYPOINT heredoc (dockerfile::Heredoc).
  name @0 :Text;
  content @1 :Data;
  expand @2 :Bool;
  chomp @3 :Bool;
  fd @4 :Int32;
}

struct KeyValue {
  # One ENV or LABEL pair (dockerfile::KeyValue).
  key @0 :Text;
  value @1 :Text;
  legacy @2 :Bool;
}

struct ArgDecl {
  # One ARG declaration (dockerfile::ArgDecl).
  name @0 :Text;
  hasDefault @1 :Bool;
  defaultValue @2 :Text;
  # as written (quotes kept), meaningful when hasDefault
}

struct HeredocSource {
  # A COPY/ADD source given as a heredoc (dockerfile::HeredocSource).
  name @0 :Text;
  data @1 :Data;
  expand @2 :Bool;
}

struct StageJob {
  # Coordinator -> worker: build one stage for one platform under a lease.
  buildId @0 :Text;
  jobId @1 :Text;
  stage @2 :Text;
  # stage name, or its index as text when unnamed
  platform @3 :Common.Platform;
  base @4 :BaseImage;
  instructions @5 :List(Instruction);
  leaseEpoch @6 :UInt64;
  # a result carrying an older epoch is stale and ignored
  buildArgs @7 :List(Flag);

  # Appended.
  targetPlatform @8 :Common.Platform;
  # the platform the stage is built for (TARGETPLATFORM)
  stageIndex @9 :UInt32;
  env @10 :List(Flag);
  # ENV from the Dockerfile, in order (FROM <stage> inherits)
  dependsOn @11 :List(Text);
  # job ids, base first
  inputs @12 :List(Flag);
  # what `FROM <stage>`, `COPY --from` and `RUN --mount=from=` name: name = the
  # reference as written (the base stage's job id for FROM), value =
  # "stage:<config digest>" of the finished upstream job or
  # "image:<manifest digest>" resolved for this job's platform
  options @13 :JobOptions;
  stepDigests @14 :List(Text);
  # empty, or one "sha256:<hex>" per instruction: the step's key inputs
  # without its parent (cache::StepDigest), so a worker can re-chain keys
  # after refining one (cache::RefinedKey)
  supplement @15 :JobSupplement;
  # Cluster jobs only: where each input blob can be fetched, the shared
  # index's records for the planned keys, the context and the secrets.
}

struct Holder {
  endpoint @0 :Text;    # tcp://HOST:PORT of a blob server; "" = the coordinator
  publicKey @1 :Text;   # its CURVE public key (Z85); "" = the coordinator's
}

struct BlobSource {
  mediaType @0 :Text;
  digest @1 :Text;
  size @2 :UInt64;
  diffId @3 :Text;      # layers only
  holders @4 :List(Holder);
}

struct CachedStep {
  key @0 :Text;
  configDigest @1 :Text;
  layers @2 :List(Layer);
}

struct ContextFile {
  path @0 :Text;
  mode @1 :UInt32;
  uid @2 :UInt32;
  gid @3 :UInt32;
  size @4 :UInt64;
  digest @5 :Text;      # regular files only
  linkTarget @6 :Text;  # symlinks only
  mtimeNs @7 :Int64;    # nanoseconds since the epoch
}

struct JobSecret {
  id @0 :Text;
  data @1 :Data;
}

struct JobSupplement {
  sources @0 :List(BlobSource);
  cachedSteps @1 :List(CachedStep);
  context @2 :List(ContextFile);
  hasDockerignore @3 :Bool;
  dockerignore @4 :Data;
  secrets @5 :List(JobSecret);
  readsContext @6 :Bool;
  # the job reads the build context (COPY/ADD, bind mounts); `context` lists
  # only the entries its steps may read, and may be empty
}

struct JobOptions {
  # Build-level settings the worker needs. Never secrets: those travel in the
  # build session, never in a job message.
  noCache @0 :Bool;
  # execute every step; results are still recorded
  hasSourceDateEpoch @1 :Bool;
  sourceDateEpoch @2 :Int64;
  allowInsecure @3 :Bool;
  # the build granted `security.insecure`
  volumes @4 :List(Text);
  # buildah-style HOST:CTR[:ro] bind mounts for every RUN
  compression @5 :Text;
  # "gzip", "zstd", "none"
  secretIds @6 :List(Text);
  # ids the session can provide (contents never travel here)
}

struct Layer {
  descriptor @0 :Common.Descriptor;
  # compressed blob as stored and pushed
  diffId @1 :Common.Digest;
  # digest of the uncompressed tar
}

struct StepResult {
  index @0 :UInt32;
  cacheKey @1 :Common.Digest;
  cached @2 :Bool;
  layer @3 :Layer;
  # unset for metadata-only steps
  durationMs @4 :UInt64;
  configDigest @5 :Text;   # the image config after the step ("" = not recorded)
  chainLength @6 :UInt32;  # how many of the stage's layers the step's image has
}

struct StageResult {
  # Worker -> coordinator when a job ends, successfully or not.
  jobId @0 :Text;
  leaseEpoch @1 :UInt64;
  layers @2 :List(Layer);
  # the stage's full layer chain, base layers first
  steps @3 :List(StepResult);
  configDigest @4 :Common.Digest;
  # image config of the stage's result
  error @5 :Common.Error;
  # set when the job failed; the coordinator decides on retries from error.kind
}

enum ProgressKind {
  start @0;
  output @1;
  cached @2;
  done @3;
  info @4;
}

struct Progress {
  # Worker -> coordinator while a job runs.
  jobId @0 :Text;
  leaseEpoch @1 :UInt64;
  step @2 :Int32;
  # instruction index, -1 for the job itself
  kind @3 :ProgressKind;
  text @4 :Data;
  # step title (start), output bytes (output), message (info)
  durationMs @5 :UInt64;
}

struct Shutdown {
  # Coordinator -> worker: stop after the current job.
  reason @0 :Text;
}
