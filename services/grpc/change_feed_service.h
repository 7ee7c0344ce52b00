// The gRPC face of the change feed: wmty.v1.ChangeFeedService.WatchChanges
// (proto/wmty/v1/change_feed.proto is the contract) over domain::ChangeFeed.
//
// A raw callback method, like wmty.v1.WhatMattersService's: the request bytes
// are parsed here, so malformed input gets INVALID_ARGUMENT naming the field.
// Each call is one ServerWriteReactor that sends what its ChangeWatch hands
// out, one message at a time (the next only after gRPC has taken the last:
// the stream's flow control is the watcher's), and is woken by the feed
// thread when there is more. No thread per watcher.
//
// Order per call: authenticate (UNAUTHENTICATED), parse (INVALID_ARGUMENT),
// authorize (PERMISSION_DENIED), then the feed. Authorization: each kind
// shown needs read (r) on its FHIR type (domain/fhir_types.h) for the
// patient watched, or for every patient without a parent; a token whose
// scopes are patient/ ones watches its own patient when no parent is given;
// include_summary needs read on Goal, Observation and List. Every call is
// audited once, when it starts (interaction "watch", action E), with its
// outcome. Watches are not counted against --max_inflight_rpcs (they are
// long-lived); the feed has its own limit (ChangeFeedOptions::max_watchers).
//
// Token expiry: the stream ends UNAUTHENTICATED when the bearer token
// expires (auth::Principal::expires); the client reconnects with a fresh
// token and start_after = the last sequence it saw. See docs/api.md.
//
// Thread safety: safe for gRPC's concurrent use. `feed` and `core` (for the
// audit trail) must outlive the service's calls.
#ifndef WMTY_GRPC_CHANGE_FEED_SERVICE_H_
#define WMTY_GRPC_CHANGE_FEED_SERVICE_H_

#include <memory>

#include <grpcpp/grpcpp.h>

#include "auth/token_verifier.h"
#include "domain/change_feed.h"
#include "domain/patient_records.h"

namespace wmty::grpc_api {

// `verifier` null: authentication disabled (every watch allowed).
std::unique_ptr<grpc::Service> NewChangeFeedService(domain::ChangeFeed* feed, domain::PatientRecords* core,
                                                    std::shared_ptr<const auth::TokenVerifier> verifier);

}  // namespace wmty::grpc_api

#endif  // WMTY_GRPC_CHANGE_FEED_SERVICE_H_
