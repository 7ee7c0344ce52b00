// The bedside app's files as compiled into the binary. The definitions are
// generated at build time from clients/bedside/ by cmake/EmbedFiles.cmake.
#ifndef WMTY_WEB_EMBEDDED_ASSETS_H_
#define WMTY_WEB_EMBEDDED_ASSETS_H_

#include <cstddef>

namespace wmty::web::internal {

struct EmbeddedAsset {
  const char* path;  // relative to clients/bedside, '/'-separated
  const unsigned char* data;
  size_t size;
};

extern const EmbeddedAsset kBedsideAssets[];
extern const size_t kBedsideAssetCount;

}  // namespace wmty::web::internal

#endif  // WMTY_WEB_EMBEDDED_ASSETS_H_
