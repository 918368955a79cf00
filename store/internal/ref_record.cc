#include "store/internal/ref_record.h"

#include <tuple>

#include "store/internal/tables.h"
#include "store/internal/varint.h"
#include "store/refs.h"

namespace tusk {
namespace {

constexpr uint8_t kRefRecordFormat = 1;

ObjectId IdFrom(std::string_view v) { return ObjectId::FromBytes(reinterpret_cast<const uint8_t*>(v.data())); }

}  // namespace

std::string RefRecord::Key() const { return tables::RefKey(dataset, kind, name); }

RefRecord RefRecord::ForDataset(Op op, std::string dataset, int64_t time_ns) {
  RefRecord r;
  r.op = op;
  r.dataset = std::move(dataset);
  r.time_ns = time_ns;
  return r;
}

RefRecord RefRecord::ForRef(Op op, std::string dataset, char kind, std::string name, std::optional<ObjectId> commit,
                            int64_t time_ns) {
  RefRecord r = ForDataset(op, std::move(dataset), time_ns);
  r.kind = kind;
  r.name = std::move(name);
  r.commit = commit;
  return r;
}

std::string RefRecord::Encode() const {
  Encoder e;
  e.PutU8(kRefRecordFormat);
  e.PutU8(static_cast<uint8_t>(op));
  e.PutVarint(seq);
  e.PutSigned(time_ns);
  e.PutBytes(prev.view());
  e.PutString(dataset);
  e.PutU8(static_cast<uint8_t>(kind));
  e.PutString(name);
  if (op == Op::kRefSet) {
    e.PutU8(commit ? 1 : 0);
    if (commit) e.PutBytes(commit->view());
  }
  return e.Take();
}

Result<RefRecord> RefRecord::Decode(std::string_view bytes) {
  auto bad = [](const std::string& why) { return Status::Corruption("bad ref record: " + why); };
  Decoder d(bytes);
  RefRecord r;
  uint8_t format = 0, op = 0, kind = 0;
  std::string_view prev, dataset, name;
  if (!d.GetU8(&format)) return bad("empty");
  if (format != kRefRecordFormat)
    return Status::Unsupported("ref record format " + std::to_string(format) + " (written by a newer tusk?)");
  if (!d.GetU8(&op) || !d.GetVarint(&r.seq) || !d.GetSigned(&r.time_ns) || !d.GetBytes(ObjectId::kSize, &prev) ||
      !d.GetString(&dataset) || !d.GetU8(&kind) || !d.GetString(&name))
    return bad("truncated");
  if (op < 1 || op > 4) return bad("unknown operation " + std::to_string(op));
  r.op = static_cast<Op>(op);
  r.prev = IdFrom(prev);
  r.dataset = std::string(dataset);
  r.kind = static_cast<char>(kind);
  r.name = std::string(name);
  if (!ValidateName("dataset", r.dataset).ok()) return bad("invalid dataset name");
  if (r.is_dataset()) {
    if (r.kind != kDatasetKind || !r.name.empty()) return bad("dataset record with a ref name");
  } else {
    if (r.kind == tables::kSettingsKind) {
      if (r.name != tables::kSettingsRefName) return bad("a settings record with a name other than 'settings'");
    } else if ((r.kind != 'b' && r.kind != 't') || !ValidateName("ref", r.name).ok()) {
      return bad("invalid ref");
    }
  }
  if (r.op == Op::kRefSet) {
    uint8_t has = 0;
    std::string_view commit;
    if (!d.GetU8(&has) || has > 1 || (has && !d.GetBytes(ObjectId::kSize, &commit))) return bad("bad commit");
    if (has) r.commit = IdFrom(commit);
    if ((r.kind == 't' || r.kind == tables::kSettingsKind) && !r.commit) return bad("a tag or settings with no id");
  }
  if (!d.empty()) return bad("trailing bytes");
  // Records are named by their hash: one change has one encoding.
  if (r.Encode() != bytes) return bad("not in canonical form");
  return r;
}

bool RefRecord::After(const RefRecord& other, const ObjectId& my_id, const ObjectId& other_id) const {
  return std::tie(seq, time_ns, my_id) > std::tie(other.seq, other.time_ns, other_id);
}

std::string RefRecordPointer::Encode() const {
  Encoder e;
  e.PutBytes(id.view());
  e.PutFixed64(seq);
  e.PutFixed64(static_cast<uint64_t>(time_ns));
  return e.Take();
}

Result<RefRecordPointer> RefRecordPointer::Decode(std::string_view bytes) {
  if (bytes.size() != kEncodedSize) return Status::Corruption("bad refrecords entry in the index");
  Decoder d(bytes);
  RefRecordPointer p;
  std::string_view id;
  uint64_t t = 0;
  d.GetBytes(ObjectId::kSize, &id);
  d.GetFixed64(&p.seq);
  d.GetFixed64(&t);
  p.id = IdFrom(id);
  p.time_ns = static_cast<int64_t>(t);
  return p;
}

RefState DeriveRefState(const std::map<std::string, StoredRefRecord>& latest) {
  RefState state;
  for (const auto& [key, f] : latest)
    if (f.record.op == RefRecord::Op::kDatasetCreated) state.datasets[f.record.dataset] = &f;
  for (const auto& [key, f] : latest) {
    const RefRecord& r = f.record;
    if (r.is_dataset()) {
      state.current[key] = &f;
      continue;
    }
    auto ds = state.datasets.find(r.dataset);
    if (ds == state.datasets.end() || !r.After(ds->second->record, f.id, ds->second->id)) continue;
    state.current[key] = &f;
    if (r.op == RefRecord::Op::kRefSet) state.refs[key] = r.commit ? std::string(r.commit->view()) : std::string();
  }
  for (const auto& [name, f] : state.datasets) {
    std::string main_key = tables::RefKey(name, 'b', kDefaultBranch);
    if (!state.current.count(main_key)) state.refs[main_key] = "";
  }
  return state;
}

}  // namespace tusk
