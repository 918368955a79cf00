// TableFormatFor: the format a dataset's table rule declares, applied.
#include "store/merge/merge.h"

namespace tusk {

std::optional<TableFormat> TableFormatFor(FileFormat declared, std::string_view path) {
  switch (declared) {
    case FileFormat::kDetect: return TableFormatForPath(path);
    case FileFormat::kCsv: return TableFormat::kCsv;
    case FileFormat::kTsv: return TableFormat::kTsv;
    case FileFormat::kJsonl: return TableFormat::kJsonl;
    case FileFormat::kText:
    case FileFormat::kBinary: return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace tusk
