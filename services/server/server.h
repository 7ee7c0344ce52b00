// WmtyServer: one running wmty service. Owns the store, the domain core and
// the gRPC server (with grpc.health.v1 and, unless disabled, reflection).
//
// Lifecycle: Start() opens the store and listens; Shutdown() reports
// NOT_SERVING, stops accepting calls, lets in-flight calls finish within the
// grace period (cancelling the rest), commits queued writes and closes the
// store cleanly.
//
// Thread safety: Shutdown() may be called from any thread, once.
#ifndef WMTY_SERVER_SERVER_H_
#define WMTY_SERVER_SERVER_H_

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "domain/patient_records.h"
#include "storage/store.h"

namespace wmty::server {

struct ServerOptions {
  std::string data_dir = "./data";
  // host:port; port 0 picks a free port (see grpc_port()).
  std::string grpc_listen = "127.0.0.1:50051";
  int max_message_bytes = 4 * 1024 * 1024;
  bool reflection = true;
  size_t block_cache_bytes = size_t{256} << 20;
};

class WmtyServer {
 public:
  // Errors: UNAVAILABLE when the store cannot be opened or the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<WmtyServer>> Start(const ServerOptions& options);
  ~WmtyServer();

  int grpc_port() const { return grpc_port_; }
  void Shutdown(absl::Duration grace);

 private:
  WmtyServer() = default;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<domain::PatientRecords> core_;
  std::unique_ptr<grpc::Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int grpc_port_ = 0;
  bool shut_down_ = false;
};

}  // namespace wmty::server

#endif  // WMTY_SERVER_SERVER_H_
