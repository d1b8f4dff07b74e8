// Media types of OCI and Docker image documents and layers, with predicates.
// Compare exact strings: registries' Content-Type parameters are stripped by the caller.
#pragma once

#include <string_view>

namespace manifold::oci {

// OCI image-spec (media-types.md).
inline constexpr std::string_view kOciImageManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciImageIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciImageConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciEmptyJson = "application/vnd.oci.empty.v1+json";
inline constexpr std::string_view kOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Non-distributable layers are deprecated: read them, never produce them.
inline constexpr std::string_view kOciLayerNondistributable =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";
inline constexpr std::string_view kOciLayerNondistributableGzip =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
inline constexpr std::string_view kOciLayerNondistributableZstd =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

// Docker Image Manifest V2, Schema 2.
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker's equivalent of non-distributable ("foreign", Windows base layers).
inline constexpr std::string_view kDockerForeignLayerGzip =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

// Docker schema1: recognised only to be refused with guidance.
inline constexpr std::string_view kDockerSchema1Manifest =
    "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view kDockerSchema1SignedManifest =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// OCI image index or Docker manifest list.
constexpr bool IsIndex(std::string_view mt) {
  return mt == kOciImageIndex || mt == kDockerManifestList;
}

/// OCI image manifest or Docker schema2 manifest (not schema1).
constexpr bool IsManifest(std::string_view mt) {
  return mt == kOciImageManifest || mt == kDockerManifest;
}

/// OCI image config or Docker container image config.
constexpr bool IsImageConfig(std::string_view mt) {
  return mt == kOciImageConfig || mt == kDockerConfig;
}

/// Non-distributable (OCI) or foreign (Docker) layer: pushed by reference, not content.
constexpr bool IsNondistributableLayer(std::string_view mt) {
  return mt == kOciLayerNondistributable || mt == kOciLayerNondistributableGzip ||
         mt == kOciLayerNondistributableZstd || mt == kDockerForeignLayerGzip;
}

/// A layer media type we can unpack: plain, gzip or zstd tar, OCI or Docker.
/// Encrypted layers (`+encrypted`) are not layers for this purpose.
constexpr bool IsLayer(std::string_view mt) {
  return mt == kOciLayer || mt == kOciLayerGzip || mt == kOciLayerZstd ||
         mt == kDockerLayerGzip || IsNondistributableLayer(mt);
}

/// Docker schema1, signed or not.
constexpr bool IsDockerSchema1(std::string_view mt) {
  return mt == kDockerSchema1Manifest || mt == kDockerSchema1SignedManifest;
}

}  // namespace manifold::oci
