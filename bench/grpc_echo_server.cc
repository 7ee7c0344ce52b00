// grpc_echo_server: the yardstick for wmtyd's gRPC numbers (bench/run.sh).
//
//   grpc_echo_server --port=0 --port_file=/tmp/p --response_file=/tmp/summary.bin
//   grpc_echo_server --port=0 --response_bytes=25000
//
// A minimal gRPC callback server that answers wmty.v1.WhatMattersService/
// GetPatientSummary with one fixed response and does nothing else: no
// parsing, no storage, no authentication, no audit. It is set up like wmtyd's
// gRPC face (services/server/server.cc): one grpc::ServerBuilder with default
// threading (gRPC's callback executor), the method registered as a raw
// callback method (ByteBuffer in, ByteBuffer out, a ServerUnaryReactor
// finished at once), the default health service on. So the load client sends
// the very same call to both servers and gets a response of the same bytes
// (run.sh captures a real 50-entry summary with `wmty_grpc_load --probe
// --dump_response` and passes it as --response_file): the ratio
// wmtyd / echo is the cost of wmty's own work per call.
// Without --response_file, a PatientSummary padded to --response_bytes.
//
// Listens on 127.0.0.1 only. SIGTERM/SIGINT stop it.
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "wmty/v1/service.grpc.pb.h"

ABSL_FLAG(int, port, 0, "Port on 127.0.0.1 (0: any free one)");
ABSL_FLAG(std::string, port_file, "", "Write the bound port here once serving");
ABSL_FLAG(std::string, response_file, "", "Serialized PatientSummary to answer with");
ABSL_FLAG(int, response_bytes, 25000, "Without --response_file: size of the synthetic response");

namespace {

using Base = wmty::v1::WhatMattersService::WithRawCallbackMethod_GetPatientSummary<
    wmty::v1::WhatMattersService::CallbackService>;

class EchoService final : public Base {
 public:
  explicit EchoService(std::string response) : response_(std::move(response)) {}

  grpc::ServerUnaryReactor* GetPatientSummary(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer*,
                                              grpc::ByteBuffer* response) override {
    grpc::Slice slice(response_);
    *response = grpc::ByteBuffer(&slice, 1);
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  const std::string response_;
};

std::string Synthetic(int bytes) {
  wmty::v1::PatientSummary s;
  s.set_parent("patients/bench-0");
  auto* w = s.add_what_matters();
  w->set_name("patients/bench-0/whatMatters/01JBASELINE0000000000000000");
  const int fixed = static_cast<int>(s.ByteSizeLong()) + 8;
  w->set_statement(std::string(bytes > fixed ? bytes - fixed : 1, 'x'));
  return s.SerializeAsString();
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::string response;
  if (!absl::GetFlag(FLAGS_response_file).empty()) {
    std::ifstream in(absl::GetFlag(FLAGS_response_file), std::ios::binary);
    std::stringstream buf;
    buf << in.rdbuf();
    response = buf.str();
    wmty::v1::PatientSummary check;
    if (response.empty() || !check.ParseFromString(response)) {
      std::fprintf(stderr, "%s is not a serialized PatientSummary\n", absl::GetFlag(FLAGS_response_file).c_str());
      return 2;
    }
  } else {
    response = Synthetic(absl::GetFlag(FLAGS_response_bytes));
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before gRPC starts its threads

  EchoService service(response);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::StrCat("127.0.0.1:", absl::GetFlag(FLAGS_port)), grpc::InsecureServerCredentials(),
                           &port);
  builder.SetMaxSendMessageSize(64 * 1024 * 1024);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "cannot listen\n");
    return 1;
  }
  if (!absl::GetFlag(FLAGS_port_file).empty()) {
    const std::string path = absl::GetFlag(FLAGS_port_file);
    {
      std::ofstream out(path + ".tmp", std::ios::trunc);
      out << port << "\n";
    }
    std::filesystem::rename(path + ".tmp", path);
  }
  std::printf("grpc_echo_server listening on 127.0.0.1:%d (%zu-byte response)\n", port, response.size());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}
