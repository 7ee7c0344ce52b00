// wmtyctl admin: the operator commands (backups).
//
//   wmtyctl [global flags] admin backup
//   wmtyctl [global flags] admin list-backups
//   wmtyctl [global flags] admin verify-backup --id=N
//   wmtyctl admin restore --backup_dir=DIR --data_dir=NEW_DIR [--id=N]
//
// backup, list-backups and verify-backup call wmty.admin.v1.AdminService on
// the server (token scope system/wmty.admin). restore runs here, offline: it
// reads the backup directory and writes a new data directory, with no server
// involved (see docs/operations.md, "Backup and restore").
#ifndef WMTY_CLIENTS_CPP_SRC_WMTYCTL_ADMIN_H_
#define WMTY_CLIENTS_CPP_SRC_WMTYCTL_ADMIN_H_

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/security/credentials.h>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace wmty::ctl {

// TLS to the server (--tls_ca_file, --tls_cert_file, --tls_key_file; the CA
// defaults to $WMTY_TLS_CA_FILE). No CA: plaintext.
struct TlsFiles {
  std::string ca_file;    // PEM CA that signed the server's certificate
  std::string cert_file;  // client certificate (mTLS), with key_file
  std::string key_file;
};
// Channel credentials for `tls`: insecure without a CA. Errors:
// INVALID_ARGUMENT (a cert without its key, or the reverse; a file that
// cannot be read).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(const TlsFiles& tls);
// Handles --tls_* flags: true if `name` is one (its value stored in `tls`).
bool TakeTlsFlag(const std::string& name, const std::string& value, TlsFiles& tls);

// The global flags given before "admin" or "watch" (they may also follow it).
struct GlobalFlags {
  std::string target;
  std::string token;
  TlsFiles tls;
  // nullopt: the command's default (minutes for backup and verify-backup,
  // which copy or read the whole database).
  std::optional<absl::Duration> timeout;
  bool json = false;
  bool help = false;
};

// The flag grammar every wmtyctl command shares: `-h`, `--name=value`,
// `--name value`, and `--name[=true|false]` for the names in `bools`
// (besides help and json). The global flags (help, json, target, token,
// --tls_*, timeout) go into `globals`; every other flag goes to `take` (a
// bool one as "true"/"false"), every argument that is not a flag to
// `positional`. Errors: INVALID_ARGUMENT naming the flag (a usage error), or
// whatever `take` / `positional` return.
absl::Status WalkFlags(const std::vector<std::string>& args, std::initializer_list<absl::string_view> bools,
                       GlobalFlags& globals,
                       absl::FunctionRef<absl::Status(const std::string& name, const std::string& value)> take,
                       absl::FunctionRef<absl::Status(const std::string& arg)> positional);

// Runs "wmtyctl admin <args...>"; returns the exit status (0 ok, 1 the call
// or restore failed, 2 usage error).
int AdminMain(GlobalFlags globals, const std::vector<std::string>& args);

// The admin lines of `wmtyctl help`.
void PrintAdminCommandList(FILE* to);

}  // namespace wmty::ctl

#endif  // WMTY_CLIENTS_CPP_SRC_WMTYCTL_ADMIN_H_
