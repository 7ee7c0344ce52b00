// The gRPC face of the domain core: wmty.v1.WhatMattersService.
//
// Every method is registered as a raw callback method: the request bytes are
// parsed here so that malformed input (including invalid UTF-8, which
// protobuf refuses without naming the field) gets INVALID_ARGUMENT with a
// field violation instead of gRPC's generic parse failure.
//
// Reads run inside the reaction against a RocksDB snapshot (no locks, no
// fsync); writes are handed to the store's commit thread and the reaction
// finishes from the store's completion thread once the change is durable, so
// nothing that waits for an fsync runs in a reactor.
//
// Load shedding: at most `max_inflight` calls are in progress at once (from
// arrival until answered; a write until it is durable). Past it a call is
// answered at once with RESOURCE_EXHAUSTED and a google.rpc.RetryInfo,
// before authentication or parsing, and is not audited (it reached no data).
// grpc.health.v1 is a separate service and is never refused.
//
// Thread safety: safe for gRPC's concurrent use. `core` must outlive it.
#ifndef WMTY_GRPC_GRPC_SERVICE_H_
#define WMTY_GRPC_GRPC_SERVICE_H_

#include <memory>

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/service_type.h>

#include "auth/token_verifier.h"
#include "domain/patient_records.h"

namespace wmty::grpc_api {

// `verifier` null means authentication is disabled (--auth_disabled, loopback
// only): every call is allowed. Otherwise every call needs a bearer token in
// the `authorization` metadata whose scopes allow the RPC for its patient.
// `max_inflight` 0: no limit.
std::unique_ptr<grpc::Service> NewWhatMattersService(domain::PatientRecords* core,
                                                     std::shared_ptr<const auth::TokenVerifier> verifier,
                                                     int max_inflight = 0);

}  // namespace wmty::grpc_api

#endif  // WMTY_GRPC_GRPC_SERVICE_H_
