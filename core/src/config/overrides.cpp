#include "slt/config/overrides.h"

#include <algorithm>

#include "slt/errors.h"

namespace slt {

namespace {

constexpr int kMaxNesting = 64;     // [] / {} levels in one value
constexpr size_t kMaxKeyParts = 64;  // a.b.c... segments in one key
constexpr size_t kMaxSweepRuns = 100000;

class ValueParser {
 public:
  ValueParser(const std::string& text, const std::string& argument) : s_(text), arg_(argument) {}

  // value (',' value)*  at the top level.
  std::vector<ConfigNode> parse_sweep(std::vector<std::string>* texts) {
    std::vector<ConfigNode> values;
    if (s_.empty()) {  // `key=` is the empty string
      values.emplace_back(std::string());
      if (texts) texts->emplace_back();
      return values;
    }
    while (true) {
      size_t start = pos_;
      values.push_back(parse_element());
      if (texts) texts->push_back(trim(s_.substr(start, pos_ - start)));
      if (pos_ >= s_.size()) break;
      expect(',');
    }
    return values;
  }

 private:
  ConfigNode parse_element() {
    skip_space();
    if (pos_ >= s_.size()) fail("a value");
    char c = s_[pos_];
    if (c == '[' || c == '{') {
      // Nesting is bounded: each level is a frame of this recursive parser.
      if (depth_ >= kMaxNesting) fail("at most " + std::to_string(kMaxNesting) + " levels of nested [] and {}");
      ++depth_;
      ConfigNode value = c == '[' ? parse_list() : parse_map();
      --depth_;
      return value;
    }
    if (c == '\'' || c == '"') {
      std::string quoted = parse_quoted();
      skip_space();
      return ConfigNode(quoted);
    }
    return parse_plain_scalar(trim(parse_unquoted()));
  }

  ConfigNode parse_list() {
    ++pos_;  // '['
    ConfigNode list = ConfigNode::list();
    skip_space();
    if (peek() == ']') {
      ++pos_;
      return list;
    }
    while (true) {
      list.elements().push_back(parse_element());
      skip_space();
      if (peek() == ']') {
        ++pos_;
        skip_space();
        return list;
      }
      expect(',');
    }
  }

  ConfigNode parse_map() {
    ++pos_;  // '{'
    ConfigNode map = ConfigNode::map();
    skip_space();
    if (peek() == '}') {
      ++pos_;
      return map;
    }
    while (true) {
      skip_space();
      size_t colon = s_.find(':', pos_);
      if (colon == std::string::npos) fail("'key: value' inside {}");
      std::string key = trim(s_.substr(pos_, colon - pos_));
      pos_ = colon + 1;
      map[key] = parse_element();
      skip_space();
      if (peek() == '}') {
        ++pos_;
        skip_space();
        return map;
      }
      expect(',');
    }
  }

  std::string parse_quoted() {
    char quote = s_[pos_++];
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != quote) {
      if (s_[pos_] == '\\' && pos_ + 1 < s_.size() &&
          (s_[pos_ + 1] == quote || s_[pos_ + 1] == '\\')) {
        ++pos_;
      }
      out += s_[pos_++];
    }
    if (pos_ >= s_.size()) fail(std::string("a closing ") + quote);
    ++pos_;
    return out;
  }

  // Up to the next top-level ',' ']' or '}', keeping ${...} interpolations whole.
  std::string parse_unquoted() {
    std::string out;
    int interpolation_depth = 0;
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == '$' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '{') {
        ++interpolation_depth;
        out += "${";
        pos_ += 2;
        continue;
      }
      if (interpolation_depth > 0) {
        if (c == '}') --interpolation_depth;
      } else if (c == ',' || c == ']' || c == '}') {
        break;
      } else if (c == '\\' && pos_ + 1 < s_.size()) {
        out += s_[++pos_];
        ++pos_;
        continue;
      }
      out += c;
      ++pos_;
    }
    if (interpolation_depth > 0) fail("a closing } of the interpolation");
    return out;
  }

  static std::string trim(const std::string& s) {
    size_t a = s.find_first_not_of(" \t");
    if (a == std::string::npos) return "";
    size_t b = s.find_last_not_of(" \t");
    return s.substr(a, b - a + 1);
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail(std::string("'") + c + "'");
    ++pos_;
  }
  [[noreturn]] void fail(const std::string& expected) const {
    auto shown = [](const std::string& text) { return text.size() > 200 ? text.substr(0, 200) + "..." : text; };
    throw ConfigError("cannot parse override '" + shown(arg_) + "': expected " + expected + " at position " +
                      std::to_string(pos_) + " of the value '" + shown(s_) + "'");
  }

  const std::string& s_;
  const std::string& arg_;
  size_t pos_ = 0;
  int depth_ = 0;
};

bool valid_key(const std::string& key) {
  if (key.empty() || key.front() == '.' || key.back() == '.') return false;
  for (char c : key)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' ||
          c == '/' || c == '@'))
      return false;
  return key.find("..") == std::string::npos;
}

}  // namespace

std::string Override::key_element() const {
  switch (kind) {
    case Kind::Add: return "+" + key;
    case Kind::ForceAdd: return "++" + key;
    case Kind::Delete: return "~" + key;
    case Kind::Change: return key;
  }
  return key;
}

std::vector<ConfigNode> parse_override_values(const std::string& value_text,
                                              std::vector<std::string>* texts) {
  return ValueParser(value_text, value_text).parse_sweep(texts);
}

Override parse_override(const std::string& text) {
  Override o;
  o.text = text;
  std::string rest = text;
  if (rest.rfind("++", 0) == 0) {
    o.kind = Override::Kind::ForceAdd;
    rest = rest.substr(2);
  } else if (rest.rfind('+', 0) == 0) {
    o.kind = Override::Kind::Add;
    rest = rest.substr(1);
  } else if (rest.rfind('~', 0) == 0) {
    o.kind = Override::Kind::Delete;
    rest = rest.substr(1);
  }
  size_t eq = rest.find('=');
  o.key = rest.substr(0, eq);
  if (!valid_key(o.key))
    throw ConfigError("cannot parse override '" + text +
                      "': expected key=value, +key=value, ++key=value or ~key (keys are dotted "
                      "names like optim.lr)");
  if (eq == std::string::npos) {
    if (o.kind != Override::Kind::Delete)
      throw ConfigError("override '" + text + "' has no value: write " + o.key +
                        "=VALUE (or ~" + o.key + " to delete the key)");
    return o;
  }
  if (static_cast<size_t>(std::count(o.key.begin(), o.key.end(), '.')) >= kMaxKeyParts)
    throw ConfigError("cannot parse override '" + text.substr(0, 80) + "...': a key has at most " +
                      std::to_string(kMaxKeyParts) + " dotted parts");
  std::string value_text = rest.substr(eq + 1);
  o.values = ValueParser(value_text, text).parse_sweep(&o.value_texts);
  return o;
}

std::vector<std::vector<Override>> expand_sweeps(const std::vector<Override>& overrides) {
  size_t total = 1;
  for (const auto& o : overrides) {
    total *= std::max<size_t>(1, o.values.size());
    if (total > kMaxSweepRuns)
      throw ConfigError("this sweep has more than " + std::to_string(kMaxSweepRuns) +
                        " runs; split it into several --multirun commands");
  }
  std::vector<std::vector<Override>> runs(1);
  for (const auto& o : overrides) {
    std::vector<std::vector<Override>> next;
    size_t n = std::max<size_t>(1, o.values.size());
    for (const auto& run : runs) {
      for (size_t i = 0; i < n; ++i) {
        Override single = o;
        if (!o.values.empty()) {
          single.values = {o.values[i]};
          single.value_texts = {o.value_texts[i]};
        }
        auto extended = run;
        extended.push_back(std::move(single));
        next.push_back(std::move(extended));
      }
    }
    runs = std::move(next);
  }
  return runs;
}

}  // namespace slt
