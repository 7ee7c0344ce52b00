#include "integration/integration_util.h"

#include <cstdlib>
#include <fstream>
#include <future>
#include <iostream>
#include <sstream>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/unknown_field_set.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"

namespace wmty::testing {
namespace {

grpc::ByteBuffer ToBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

std::string FromBuffer(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

// Length-delimited field `number` holding `value`, in wire format.
std::string StringField(int number, const std::string& value) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.WriteTag(static_cast<uint32_t>(number << 3 | 2));
  coded.WriteVarint32(static_cast<uint32_t>(value.size()));
  coded.WriteString(value);
  coded.Trim();
  return out;
}

// The first length-delimited field `number` of `unknown`, if any.
const std::string* FindBytes(const google::protobuf::UnknownFieldSet& unknown, int number) {
  for (int i = 0; i < unknown.field_count(); ++i) {
    const auto& f = unknown.field(i);
    if (f.number() == number && f.type() == google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED) {
      return &f.length_delimited();
    }
  }
  return nullptr;
}

// Waits for the next event of a completion queue used for one call at a time.
bool Await(grpc::CompletionQueue& cq, void* expected_tag) {
  void* tag = nullptr;
  bool ok = false;
  if (!cq.Next(&tag, &ok) || tag != expected_tag) return false;
  return ok;
}

}  // namespace

RawResult RawUnaryCall(const std::string& target, const std::string& method, const std::string& request,
                       absl::Duration timeout) {
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  grpc::ByteBuffer in = ToBuffer(request);
  grpc::ByteBuffer out;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &in, &out, [&done](grpc::Status s) { done.set_value(s); });
  grpc::Status status = done.get_future().get();
  RawResult result;
  result.status = FromGrpcStatus(status);
  if (status.ok()) result.response = FromBuffer(out);
  return result;
}

std::string ReplaceMarker(std::string wire, absl::string_view marker_view, absl::string_view replacement_view) {
  const std::string marker(marker_view), replacement(replacement_view);
  const size_t at = wire.find(marker);
  if (at == std::string::npos || wire.find(marker, at + 1) != std::string::npos ||
      marker.size() != replacement.size()) {
    std::cerr << "ReplaceMarker: marker missing, repeated or of another length\n";
    std::abort();
  }
  wire.replace(at, marker.size(), replacement);
  return wire;
}

absl::StatusOr<int> HealthCheck(const std::string& target, const std::string& service) {
  // HealthCheckRequest { string service = 1; } / HealthCheckResponse { ServingStatus status = 1; }
  const std::string request = service.empty() ? std::string() : StringField(1, service);
  RawResult r = RawUnaryCall(target, "/grpc.health.v1.Health/Check", request, absl::Seconds(5));
  if (!r.status.ok()) return r.status;
  google::protobuf::UnknownFieldSet fields;
  if (!fields.ParseFromString(r.response)) return absl::DataLossError("HealthCheckResponse does not parse");
  int status = 0;  // UNKNOWN when absent (proto3 default)
  for (int i = 0; i < fields.field_count(); ++i) {
    if (fields.field(i).number() == 1 && fields.field(i).type() == google::protobuf::UnknownField::TYPE_VARINT) {
      status = static_cast<int>(fields.field(i).varint());
    }
  }
  return status;
}

absl::StatusOr<std::vector<std::string>> ReflectionListServices(const std::string& target) {
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(&ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  // Tags only need to be distinct addresses.
  int start_tag, write_tag, done_tag, read_tag, finish_tag;
  std::vector<std::string> responses;
  call->StartCall(&start_tag);
  if (Await(cq, &start_tag)) {
    // ServerReflectionRequest { string list_services = 7; }
    call->Write(ToBuffer(StringField(7, "*")), &write_tag);
    if (Await(cq, &write_tag)) {
      call->WritesDone(&done_tag);
      if (Await(cq, &done_tag)) {
        for (;;) {
          grpc::ByteBuffer buffer;
          call->Read(&buffer, &read_tag);
          if (!Await(cq, &read_tag)) break;
          responses.push_back(FromBuffer(buffer));
        }
      }
    }
  }
  grpc::Status status;
  call->Finish(&status, &finish_tag);
  Await(cq, &finish_tag);
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
  if (!status.ok()) return FromGrpcStatus(status);
  if (responses.size() != 1) return absl::InternalError(absl::StrCat(responses.size(), " reflection responses"));

  // ServerReflectionResponse { ListServiceResponse list_services_response = 6; ErrorResponse error_response = 7; }
  // ListServiceResponse { repeated ServiceResponse service = 1; }  ServiceResponse { string name = 1; }
  google::protobuf::UnknownFieldSet response;
  if (!response.ParseFromString(responses[0])) return absl::DataLossError("reflection response does not parse");
  if (FindBytes(response, 7) != nullptr) return absl::InternalError("reflection returned an error_response");
  const std::string* list = FindBytes(response, 6);
  if (list == nullptr) return absl::DataLossError("reflection response without list_services_response");
  google::protobuf::UnknownFieldSet services;
  if (!services.ParseFromString(*list)) return absl::DataLossError("ListServiceResponse does not parse");
  std::vector<std::string> names;
  for (int i = 0; i < services.field_count(); ++i) {
    if (services.field(i).number() != 1) continue;
    google::protobuf::UnknownFieldSet service;
    if (!service.ParseFromString(services.field(i).length_delimited())) {
      return absl::DataLossError("ServiceResponse does not parse");
    }
    if (const std::string* name = FindBytes(service, 1)) names.push_back(*name);
  }
  return names;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::optional<uint64_t> LoggedLastSequence(const std::string& log, absl::string_view msg) {
  const std::string msg_field = absl::StrCat("\"msg\":\"", msg, "\"");
  constexpr absl::string_view kSeq = "\"last_sequence\":\"";
  std::optional<uint64_t> found;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (line.find(msg_field) == absl::string_view::npos) continue;
    const size_t at = line.find(kSeq);
    if (at == absl::string_view::npos) continue;
    absl::string_view rest = line.substr(at + kSeq.size());
    uint64_t value = 0;
    if (absl::SimpleAtoi(rest.substr(0, rest.find('"')), &value)) found = value;
  }
  return found;
}

std::string Bytes(const google::protobuf::Message& m) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    m.SerializeToCodedStream(&coded);
  }
  return out;
}

}  // namespace wmty::testing
