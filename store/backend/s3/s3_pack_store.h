// The pack seam (store/backend/pack_store.h) on S3: each pack is one object.
//
// Layout: pack `id` is the object `PREFIX + "packs/" + PackName(id) + ".pack"`,
// e.g. "repo/packs/00c0ffee12345678.pack"; Describe gives its URL,
// "s3://BUCKET/repo/packs/00c0ffee12345678.pack". There is no fan-out
// directory as on local disk: S3 has no directories, and listing one flat
// prefix is the same paged ListObjectsV2 either way. Other keys under
// packs/ (and names ParsePackFileName refuses) are not packs and are left
// alone.
//
// Writing: an object cannot be appended to; it is written whole, and it
// appears whole or not at all. So a sink spools the appended bytes to a
// local temporary file (in S3PackStoreOptions::scratch_dir, unlinked as
// soon as it is made, so nothing is left behind whatever happens to the
// process) and Finish uploads it: in one create-only PUT (If-None-Match: *)
// when it fits in one part, else as a multipart upload with several parts
// in flight, read back from the spool file part by part (a 32 MiB pack is
// not held in memory). A failed Finish leaves no object: the PUT did not
// happen, or the multipart upload is aborted.
//
// What List sees: finished packs only. Unlike on local disk, a writer that
// died leaves no unfinished pack behind (at worst, if it died in the middle
// of a multipart upload, parts that cost storage until a bucket lifecycle
// rule aborts the upload; they are not objects and List never sees them).
// List sees what the server's listing sees: on AWS S3 and Ceph RGW a
// finished pack is listed as soon as Finish returns.
//
// Create-only: Create refuses (AlreadyExists) an id whose object exists or
// that a sink of this store is still writing. A single-PUT Finish is
// create-only on the server too; a multipart one cannot be (the client's
// multipart upload has no conditional form), so two processes creating the
// same id at once could both finish it. Pack ids are 64 random bits
// (PackWriter), which is what makes that case not arise.
//
// Sizes: Open and Size need a pack's size. It comes from a size this store
// already knows (from Finish or List; packs are immutable, so a known size
// is never wrong) or else from one HEAD. So a pack that another process
// removed meanwhile may still open here; its reads then fail with NotFound.
// Reads are ranged GETs of exactly the bytes asked for; nothing downloads a
// whole pack.
//
// Thread-safety: the store is thread-safe, and so are the files it opens
// (many threads read one pack at once over the client's pooled
// connections); a sink is its owner's. Sinks and files share the client
// with the store and may outlive it.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "store/backend/pack_store.h"
#include "store/backend/s3/s3_client.h"

namespace tusk {

struct S3PackStoreOptions {
  // Where sinks spool the packs they write; made (mode 0700) when missing.
  // "" means $TMPDIR, or /tmp without it. Each open sink holds up to a pack
  // there (~32 MiB), in a file that has no name.
  std::string scratch_dir;
  // A pack of at most `part_size` bytes is uploaded in one PUT; a larger
  // one as a multipart upload of parts this size (at least 5 MiB, the S3
  // minimum: a smaller one makes such a Finish fail with InvalidArgument).
  size_t part_size = 8 << 20;
  // Parts uploaded at once by one Finish, each holding a part_size buffer.
  int parts_in_flight = 4;
};

// Packs under `prefix` ("" for the whole bucket, else ending in '/'; a
// missing final '/' is added) of `client`'s bucket. Every error of the
// client reaches the caller as the client gave it, naming the pack's URL;
// none waits longer than the client's timeouts and retries allow.
std::unique_ptr<PackStore> NewS3PackStore(std::shared_ptr<s3::Client> client, std::string prefix,
                                          S3PackStoreOptions options);

}  // namespace tusk
