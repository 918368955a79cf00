// The real HTTP transport: libcurl, signing every request with its SigV4
// signer (CURLOPT_AWS_SIGV4), over connections kept alive in a pool of
// easy handles and a share of DNS and TLS session caches.
//
// libcurl 7.88 quirks this works around (measured against Ceph RGW 16):
//  * it does not add x-amz-content-sha256, which S3 requires with SigV4:
//    the transport sends "UNSIGNED-PAYLOAD" (curl signs the header as sent);
//  * it signs every header in CURLOPT_HTTPHEADER, including the "Name:"
//    entries that remove a header, which are then never sent and break the
//    signature: so no such entries (no "Expect:"), ever;
//  * it signs the query string as given, so URLs must carry a canonical one
//    (endpoint.h).
// The payload is sent unsigned: on https, TLS protects it; on plain http
// (a local test server) nothing would, and tusk's packs carry their own
// checksums.
//
// Thread-safety: Perform may be called from many threads at once.
#pragma once

#include <memory>
#include <string>

#include "store/backend/s3/credentials.h"
#include "store/backend/s3/http.h"
#include "store/backend/s3/s3_client.h"
#include "store/status.h"

namespace tusk::s3 {

// A transport signing as `credentials` for `region`, with the timeouts,
// TLS and pool settings of `options`. IoError when libcurl cannot start.
Result<std::unique_ptr<HttpTransport>> NewCurlTransport(const ClientOptions& options, const std::string& region,
                                                        Credentials credentials);

}  // namespace tusk::s3
