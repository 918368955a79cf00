#include "store/refs.h"

#include <cstdio>

namespace tusk {

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // truncated sequence
    for (size_t k = 1; k <= n; k++) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = cp << 6 | (cc & 0x3f);
    }
    // Overlong forms, surrogates and out-of-range code points are invalid.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += n + 1;
  }
  return true;
}

std::string EscapeForDisplay(std::string_view bytes) {
  std::string out;
  size_t i = 0;
  while (i < bytes.size()) {
    unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
      i++;
      continue;
    }
    if (c >= 0x80) {
      // Keep valid multi-byte sequences as they are.
      size_t n = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
      if (n && i + n <= bytes.size() && IsValidUtf8(bytes.substr(i, n))) {
        out.append(bytes.substr(i, n));
        i += n;
        continue;
      }
    }
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02x", c);
    out += buf;
    i++;
  }
  return out;
}

Status ValidateName(std::string_view what, std::string_view name) {
  std::string shown = "'" + EscapeForDisplay(name) + "'";
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("invalid " + std::string(what) + " name " + shown + ": " + why);
  };
  if (name.empty()) return bad("it is empty");
  if (name.size() > 255) return bad("it is longer than 255 bytes");
  if (name == "." || name == "..") return bad("'.' and '..' are reserved");
  if (!IsValidUtf8(name)) return bad("it is not valid UTF-8");
  if (name[0] == '-') return bad("it may not start with '-'");
  for (size_t i = 0; i < name.size(); i++) {
    unsigned char c = static_cast<unsigned char>(name[i]);
    // C0 controls, DEL, and the C1 controls U+0080-U+009F (UTF-8 C2 80-9F).
    if (c < 0x20 || c == 0x7f ||
        (c == 0xc2 && i + 1 < name.size() && static_cast<unsigned char>(name[i + 1]) < 0xa0))
      return bad("it contains a control character");
    if (c == '/' || c == '@' || c == '~' || c == ':') return bad(std::string("it contains '") + char(c) + "'");
  }
  return Status::Ok();
}

Result<RefSpec> ParseRef(std::string_view text, bool allow_bare_dataset) {
  RefSpec spec;
  spec.text = std::string(text);
  size_t at = text.find('@');
  std::string_view rest;
  if (at == std::string_view::npos) {
    if (!allow_bare_dataset)
      return Status::InvalidArgument("'" + EscapeForDisplay(text) + "' is not a ref; expected DATASET@REF, e.g. data@main");
    size_t tilde = text.find('~');
    spec.dataset = std::string(text.substr(0, tilde));
    rest = tilde == std::string_view::npos ? std::string_view() : text.substr(tilde);
  } else {
    spec.dataset = std::string(text.substr(0, at));
    std::string_view after = text.substr(at + 1);
    size_t tilde = after.find('~');
    spec.rev = std::string(after.substr(0, tilde));
    rest = tilde == std::string_view::npos ? std::string_view() : after.substr(tilde);
    if (spec.rev.empty()) return Status::InvalidArgument("'" + EscapeForDisplay(text) + "': nothing after '@'");
    if (size_t slash = spec.rev.find('/'); slash != std::string::npos) {
      spec.remote = spec.rev.substr(0, slash);
      spec.rev = spec.rev.substr(slash + 1);
      TUSK_RETURN_IF_ERROR(ValidateName("remote", spec.remote).Annotate(EscapeForDisplay(text)));
      if (spec.rev.empty())
        return Status::InvalidArgument("'" + EscapeForDisplay(text) + "': expected REMOTE/BRANCH after '@'");
    }
    TUSK_RETURN_IF_ERROR(ValidateName("ref", spec.rev).Annotate(EscapeForDisplay(text)));
  }
  TUSK_RETURN_IF_ERROR(ValidateName("dataset", spec.dataset).Annotate(EscapeForDisplay(text)));
  // ~N suffixes
  while (!rest.empty()) {
    rest.remove_prefix(1);  // '~'
    size_t i = 0;
    unsigned long long n = 0;
    while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') {
      n = n * 10 + static_cast<unsigned>(rest[i] - '0');
      if (n > 1000000) return Status::InvalidArgument("'" + EscapeForDisplay(text) + "': ancestor count too large");
      i++;
    }
    if (i == 0) n = 1;
    rest.remove_prefix(i);
    if (!rest.empty() && rest[0] != '~')
      return Status::InvalidArgument("'" + EscapeForDisplay(text) + "': expected ~N after the ref name");
    spec.ancestors += static_cast<unsigned>(n);
    if (spec.ancestors > 1000000) return Status::InvalidArgument("'" + EscapeForDisplay(text) + "': ancestor count too large");
  }
  return spec;
}

Result<RefSpec> ParseNewRefName(std::string_view text, std::string_view what) {
  size_t at = text.find('@');
  if (at == std::string_view::npos)
    return Status::InvalidArgument("'" + EscapeForDisplay(text) + "': expected DATASET@" +
                                   std::string(what == "branch" ? "BRANCH" : "TAG"));
  RefSpec spec;
  spec.text = std::string(text);
  spec.dataset = std::string(text.substr(0, at));
  spec.rev = std::string(text.substr(at + 1));
  TUSK_RETURN_IF_ERROR(ValidateName("dataset", spec.dataset));
  TUSK_RETURN_IF_ERROR(ValidateName(what, spec.rev));
  return spec;
}

}  // namespace tusk
