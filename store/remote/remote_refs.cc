// Refs on a remote: one small object per ref, moved only by conditional
// writes (FORMAT.md, "Remotes").
#include "store/refs.h"
#include "store/remote/remote.h"

namespace tusk {
namespace {

constexpr std::string_view kRefHeader = "tusk ref 1\n";
// A ref object is 76 bytes; anything much larger is not one, and is not read.
constexpr uint64_t kMaxRefObjectSize = 256;

std::string KindDirectory(char kind) { return kind == 't' ? "tags/" : "branches/"; }

std::string EncodeRefObject(const ObjectId& commit) { return std::string(kRefHeader) + commit.Hex() + "\n"; }

Result<ObjectId> DecodeRefObject(std::string_view text, const std::string& where) {
  if (text.substr(0, kRefHeader.size()) != kRefHeader) {
    if (text.rfind("tusk ref ", 0) == 0)
      return Status::Unsupported(where + " is a ref of a newer remote format; upgrade tusk");
    return Status::Corruption(where + " is not a tusk ref");
  }
  text.remove_prefix(kRefHeader.size());
  if (text.size() != 65 || text.back() != '\n') return Status::Corruption(where + " is not a tusk ref (bad length)");
  auto id = ObjectId::FromHex(text.substr(0, 64));
  if (!id) return Status::Corruption(where + " is not a tusk ref (bad commit id)");
  return *id;
}

// The (dataset, kind, name) of a key under PREFIX/refs/; false for any
// other key.
bool ParseRefPath(std::string_view rest, std::string* dataset, char* kind, std::string* name) {
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return false;
  *dataset = std::string(rest.substr(0, slash));
  rest.remove_prefix(slash + 1);
  if (rest == "settings") {
    *kind = 's';
    *name = "settings";
  } else if (rest.rfind("branches/", 0) == 0) {
    *kind = 'b';
    *name = std::string(rest.substr(9));
  } else if (rest.rfind("tags/", 0) == 0) {
    *kind = 't';
    *name = std::string(rest.substr(5));
  } else {
    return false;
  }
  return ValidateName("dataset", *dataset).ok() && (*kind == 's' || ValidateName("ref", *name).ok());
}

}  // namespace

std::string RemoteRefKey(const s3::Location& location, const std::string& dataset, char kind, const std::string& name) {
  if (kind == 's') return location.Key("refs/" + dataset + "/settings");
  return location.Key("refs/" + dataset + "/" + KindDirectory(kind) + name);
}

Result<std::optional<RemoteRefValue>> ReadRemoteRef(s3::Client& client, const s3::Location& location,
                                                   const std::string& dataset, char kind, const std::string& name) {
  std::string key = RemoteRefKey(location, dataset, kind, name);
  // The etag first: if the ref moves between the two requests, a write
  // conditioned on this etag fails instead of overwriting the newer value.
  auto head = client.Head(key);
  if (!head.ok() && head.status().code() == Status::Code::kNotFound) return std::optional<RemoteRefValue>();
  TUSK_RETURN_IF_ERROR(head.status());
  if (head->size > kMaxRefObjectSize) return Status::Corruption(client.Describe(key) + " is not a tusk ref (too large)");
  auto body = client.Get(key);
  if (!body.ok() && body.status().code() == Status::Code::kNotFound) return std::optional<RemoteRefValue>();
  TUSK_RETURN_IF_ERROR(body.status());
  TUSK_ASSIGN_OR_RETURN(ObjectId commit, DecodeRefObject(*body, client.Describe(key)));
  return std::optional<RemoteRefValue>(RemoteRefValue{dataset, kind, name, commit, head->etag});
}

Result<std::vector<RemoteRefValue>> ListRemoteRefValues(s3::Client& client, const s3::Location& location,
                                                       const std::optional<std::string>& dataset,
                                                       std::vector<std::string>* skipped) {
  std::string prefix = location.Key("refs/") + (dataset ? *dataset + "/" : "");
  TUSK_ASSIGN_OR_RETURN(std::vector<s3::ObjectInfo> listed, client.List(prefix));
  std::vector<RemoteRefValue> out;
  for (const auto& o : listed) {
    RemoteRefValue v;
    if (!ParseRefPath(std::string_view(o.key).substr(location.Key("refs/").size()), &v.dataset, &v.kind, &v.name))
      continue;
    Result<ObjectId> commit = Status::Corruption(client.Describe(o.key) + " is not a tusk ref (too large)");
    if (o.size <= kMaxRefObjectSize) {
      auto body = client.Get(o.key);
      if (!body.ok() && body.status().code() == Status::Code::kNotFound) continue;  // deleted meanwhile
      TUSK_RETURN_IF_ERROR(body.status());
      commit = DecodeRefObject(*body, client.Describe(o.key));
    }
    if (!commit.ok()) {
      if (!skipped) return commit.status();
      skipped->push_back(commit.status().message() + "; skipped");
      continue;
    }
    v.commit = *commit;
    v.etag = o.etag;
    out.push_back(std::move(v));
  }
  return out;
}

Result<std::string> WriteRemoteRef(s3::Client& client, const s3::Location& location, const std::string& dataset,
                                   char kind, const std::string& name, const ObjectId& commit,
                                   const std::optional<RemoteRefValue>& expected) {
  std::string key = RemoteRefKey(location, dataset, kind, name);
  auto condition = expected ? s3::WriteCondition::IfMatch(expected->etag) : s3::WriteCondition::IfNoneMatchAny();
  auto etag = client.Put(key, EncodeRefObject(commit), condition);
  if (!etag.ok() && etag.status().code() == Status::Code::kConflict)
    return Status::Conflict(client.Describe(key) + " moved meanwhile (another push landed first)");
  return etag;
}

}  // namespace tusk
