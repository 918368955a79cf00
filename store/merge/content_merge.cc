#include "store/merge/content_merge.h"

#include "store/exporter.h"

namespace tusk {
namespace {

Result<std::string> ReadWhole(Repository& repo, const TreeEntry* e) {
  std::string out;
  if (!e) return out;
  out.reserve(e->size);
  TUSK_RETURN_IF_ERROR(ReadFileContent(repo, *e, [&](std::string_view piece) {
    out.append(piece);
    return Status::Ok();
  }));
  return out;
}

std::string TooLargeDetail(const TreeEntry* b, const TreeEntry& o, const TreeEntry& t) {
  uint64_t largest = std::max({b ? b->size : 0, o.size, t.size});
  return "changed on both sides; " + std::to_string(largest) + " bytes is above the " +
         std::to_string(kMaxLineMergeBytes >> 20) + " MiB limit of a line or table merge";
}

}  // namespace

Result<std::vector<ChunkRef>> StoreContent(Repository& repo, WriteSession& session, std::string_view content) {
  Chunker chunker(repo.config().chunker);
  std::vector<ChunkRef> chunks;
  const auto* p = reinterpret_cast<const uint8_t*>(content.data());
  size_t at = 0;
  while (at < content.size()) {
    size_t len = chunker.NextCut(p + at, content.size() - at, true);
    std::string_view piece = content.substr(at, len);
    ObjectId id = Sha256::Of(piece.data(), piece.size());
    TUSK_RETURN_IF_ERROR(session.PutChunk(id, piece).status());
    chunks.push_back({id, len});
    at += len;
  }
  return chunks;
}

Result<ContentMergeOutput> MergeFileContent(Repository& repo, WriteSession& session, const ContentMergeInput& in,
                                            const TreeMergeOptions& options) {
  ContentMergeOutput out;
  const TreeEntry& o = *in.ours;
  const TreeEntry& t = *in.theirs;
  const TreeEntry& favoured = options.favor == MergeFavor::kTheirs ? t : o;
  auto keep_favoured = [&]() {
    out.chunks = favoured.chunks;
    out.size = favoured.size;
  };
  uint64_t largest = std::max({in.base ? in.base->size : 0, o.size, t.size});
  if (largest > kMaxLineMergeBytes) {
    out.conflict = MergeConflict{MergeConflict::Kind::kBinary, "", TooLargeDetail(in.base, o, t), {}};
    keep_favoured();
    return out;
  }
  TUSK_ASSIGN_OR_RETURN(std::string base, ReadWhole(repo, in.base));
  TUSK_ASSIGN_OR_RETURN(std::string ours, ReadWhole(repo, in.ours));
  TUSK_ASSIGN_OR_RETURN(std::string theirs, ReadWhole(repo, in.theirs));

  if (auto format = TableFormatForPath(in.path)) {
    KeySpec key = options.table_key ? options.table_key(in.path) : std::nullopt;
    TableFavor favor = options.favor == MergeFavor::kOurs     ? TableFavor::kOurs
                       : options.favor == MergeFavor::kTheirs ? TableFavor::kTheirs
                                                              : TableFavor::kNone;
    auto merged = MergeTables(base, ours, theirs, *format, key, favor);
    if (merged.ok()) {
      out.method = std::string("table, ") + merged->key.Describe();
      if (merged->clean || options.favor != MergeFavor::kNone) {
        if (!merged->clean) {
          // Only schema conflicts remain (MergeTables resolved the rest):
          // the favoured side's whole file.
          out.note = "columns changed differently on both sides: took " +
                     std::string(options.favor == MergeFavor::kOurs ? "ours" : "theirs") + " whole";
          keep_favoured();
          return out;
        }
        TUSK_ASSIGN_OR_RETURN(out.chunks, StoreContent(repo, session, merged->merged));
        out.size = merged->merged.size();
        return out;
      }
      size_t n = merged->conflicts.size();
      out.conflict = MergeConflict{MergeConflict::Kind::kTable, "",
                                   std::to_string(n) + (n == 1 ? " conflict" : " conflicts") + " (" +
                                       merged->key.Describe() + ")",
                                   std::move(merged->conflicts)};
      out.marked = std::move(merged->merged);
      keep_favoured();
      return out;
    }
    out.note = std::string("not merged as a ") + TableFormatName(*format) + " table: " + merged.status().message();
  }

  if (!LooksLikeText(base) || !LooksLikeText(ours) || !LooksLikeText(theirs)) {
    out.method.clear();
    out.conflict = MergeConflict{MergeConflict::Kind::kBinary, "", "binary content changed on both sides", {}};
    keep_favoured();
    return out;
  }
  LineMergeLabels labels = options.labels;
  labels.favor = options.favor == MergeFavor::kOurs     ? LineMergeLabels::Favor::kOurs
                 : options.favor == MergeFavor::kTheirs ? LineMergeLabels::Favor::kTheirs
                                                        : LineMergeLabels::Favor::kNone;
  TUSK_ASSIGN_OR_RETURN(LineMergeResult lines, MergeLines(base, ours, theirs, labels));
  out.method = "lines";
  if (lines.clean) {
    TUSK_ASSIGN_OR_RETURN(out.chunks, StoreContent(repo, session, lines.merged));
    out.size = lines.merged.size();
    return out;
  }
  if (options.favor != MergeFavor::kNone)
    return Status::Corruption("a line merge favouring one side left conflicts in " + in.path);
  out.conflict = MergeConflict{MergeConflict::Kind::kText, "",
                               std::to_string(lines.conflicts) + (lines.conflicts == 1 ? " conflicting hunk" : " conflicting hunks"),
                               {}};
  out.marked = std::move(lines.merged);
  keep_favoured();
  return out;
}

}  // namespace tusk
