#include "slt/io/tensor_io.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>

#include "slt/io/files.h"
#include "zip_archive.h"

namespace slt {

namespace {

// ---------------------------------------------------------------------------
// Unpickler for what torch.save writes (protocol 2; later protocols' opcodes
// are accepted too).

struct Item {
  enum class Kind { Value, Mark, Global, Object, Storage };
  Kind kind = Kind::Value;
  c10::IValue value;      // Kind::Value
  std::string name;       // Global: "module.name"; Object: its class
  std::vector<c10::IValue> args;  // Object: constructor arguments (for numpy.dtype)
  at::Tensor storage;     // Kind::Storage: flat tensor over the storage bytes

  static Item of(c10::IValue v) {
    Item i;
    i.value = std::move(v);
    return i;
  }
};

c10::ScalarType storage_dtype(const std::string& storage_class) {
  static const std::map<std::string, c10::ScalarType> types = {
      {"FloatStorage", at::kFloat},    {"DoubleStorage", at::kDouble}, {"HalfStorage", at::kHalf},
      {"BFloat16Storage", at::kBFloat16}, {"LongStorage", at::kLong}, {"IntStorage", at::kInt},
      {"ShortStorage", at::kShort},    {"CharStorage", at::kChar},     {"ByteStorage", at::kByte},
      {"BoolStorage", at::kBool},      {"ComplexFloatStorage", at::kComplexFloat},
      {"ComplexDoubleStorage", at::kComplexDouble}};
  std::string cls = storage_class.substr(storage_class.rfind('.') + 1);
  auto it = types.find(cls);
  if (it == types.end()) throw TensorFileError("unsupported tensor storage type " + storage_class);
  return it->second;
}

class Unpickler {
 public:
  // `lazy`: storages are not read; tensors come back on the meta device, and
  // storage_keys() maps each meta storage to its record.
  Unpickler(std::string_view bytes, const detail::ZipArchive& archive, std::string prefix,
            std::vector<std::string>& warnings, bool lazy = false)
      : p_(bytes), archive_(archive), prefix_(std::move(prefix)), warnings_(warnings), lazy_(lazy) {}

  const std::map<const void*, std::string>& storage_keys() const { return storage_keys_; }

  c10::IValue run() {
    while (true) {
      uint8_t op = byte();
      switch (op) {
        case 0x80: byte(); break;                          // PROTO
        case 0x95: read_le(8); break;                      // FRAME
        case '.': return to_value(pop(), "the file");      // STOP
        case '(': push_mark(); break;                      // MARK
        case '}': push(c10::impl::GenericDict(c10::AnyType::get(), c10::AnyType::get())); break;  // EMPTY_DICT
        case ']': push(c10::impl::GenericList(c10::AnyType::get())); break;  // EMPTY_LIST
        case ')': push(c10::ivalue::Tuple::create({})); break;               // EMPTY_TUPLE
        case 0x8f: push(c10::impl::GenericList(c10::AnyType::get())); break; // EMPTY_SET (as a list)
        case 'N': push(c10::IValue()); break;
        case 0x88: push(true); break;
        case 0x89: push(false); break;
        case 'J': push(static_cast<int64_t>(static_cast<int32_t>(read_le(4)))); break;  // BININT
        case 'K': push(static_cast<int64_t>(byte())); break;                              // BININT1
        case 'M': push(static_cast<int64_t>(read_le(2))); break;                          // BININT2
        case 0x8a: push(read_long(byte())); break;                                        // LONG1
        case 0x8b: push(read_long(read_le(4))); break;                                    // LONG4
        case 'G': {                                                                        // BINFLOAT (big-endian)
          uint64_t bits = 0;
          for (int i = 0; i < 8; ++i) bits = (bits << 8) | byte();
          double d;
          std::memcpy(&d, &bits, 8);
          push(d);
          break;
        }
        case 'X': push(std::string(take(read_le(4)))); break;   // BINUNICODE
        case 0x8c: push(std::string(take(byte()))); break;      // SHORT_BINUNICODE
        case 0x8d: push(std::string(take(read_le(8)))); break;  // BINUNICODE8
        case 'T': push(std::string(take(read_le(4)))); break;   // BINSTRING
        case 'U': push(std::string(take(byte()))); break;       // SHORT_BINSTRING
        case 'B': push(std::string(take(read_le(4)))); break;   // BINBYTES
        case 'C': push(std::string(take(byte()))); break;       // SHORT_BINBYTES
        case 0x8e: push(std::string(take(read_le(8)))); break;  // BINBYTES8
        case 'q': memo_[byte()] = top(); break;                 // BINPUT
        case 'r': memo_[read_le(4)] = top(); break;             // LONG_BINPUT
        case 0x94: memo_[memo_.size()] = top(); break;          // MEMOIZE
        case 'h': stack_.push_back(memo_at(byte())); break;     // BINGET
        case 'j': stack_.push_back(memo_at(read_le(4))); break; // LONG_BINGET
        case '0': pop(); break;                                 // POP
        case '1': pop_to_mark(); break;                         // POP_MARK
        case '2': stack_.push_back(top()); break;               // DUP
        case 'c': {                                             // GLOBAL "module\nname\n"
          std::string module = read_line(), name = read_line();
          push_global(module + "." + name);
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          std::string name = to_value(pop(), "global").toStringRef();
          std::string module = to_value(pop(), "global").toStringRef();
          push_global(module + "." + name);
          break;
        }
        case 't': {  // TUPLE
          auto items = pop_to_mark();
          push_tuple(std::move(items));
          break;
        }
        case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
          size_t n = op - 0x84;
          std::vector<Item> items(stack_.end() - n, stack_.end());
          stack_.resize(stack_.size() - n);
          push_tuple(std::move(items));
          break;
        }
        case 'a': {  // APPEND
          Item v = pop();
          append(top(), v);
          break;
        }
        case 'e': {  // APPENDS
          auto items = pop_to_mark();
          for (auto& v : items) append(top(), v);
          break;
        }
        case 0x90: pop_to_mark(); break;  // ADDITEMS (sets are rare in checkpoints: dropped)
        case 0x91: pop_to_mark(); push(c10::IValue()); break;  // FROZENSET
        case 's': {  // SETITEM
          Item v = pop(), k = pop();
          set_item(top(), k, v);
          break;
        }
        case 'u': {  // SETITEMS
          auto items = pop_to_mark();
          for (size_t i = 0; i + 1 < items.size(); i += 2) set_item(top(), items[i], items[i + 1]);
          break;
        }
        case 'Q': {  // BINPERSID: ('storage', storage_type, key, location, numel)
          Item pid = pop();
          push_storage(pid);
          break;
        }
        case 'R': {  // REDUCE
          Item args = pop(), callable = pop();
          stack_.push_back(reduce(callable, args));
          break;
        }
        case 0x81: {  // NEWOBJ
          Item args = pop(), cls = pop();
          stack_.push_back(reduce(cls, args));
          break;
        }
        case 'b': {  // BUILD: state is ignored except for objects that need none
          pop();
          break;
        }
        default: {
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02x", op);
          throw TensorFileError(std::string("unsupported pickle opcode ") + hex + " at byte " +
                                std::to_string(pos_ - 1));
        }
      }
    }
  }

 private:
  // --- reading
  uint8_t byte() {
    if (pos_ >= p_.size()) throw TensorFileError("the pickle ends early (truncated file)");
    return static_cast<uint8_t>(p_[pos_++]);
  }
  uint64_t read_le(int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(byte()) << (8 * i);
    return v;
  }
  std::string_view take(uint64_t n) {
    if (pos_ + n > p_.size()) throw TensorFileError("the pickle ends early (truncated file)");
    auto s = p_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::string read_line() {
    size_t end = p_.find('\n', pos_);
    if (end == std::string_view::npos) throw TensorFileError("the pickle ends early (truncated file)");
    std::string s(p_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return s;
  }
  int64_t read_long(uint64_t n) {
    auto bytes = take(n);
    if (n == 0) return 0;
    if (n > 8) throw TensorFileError("integer too large for int64 in pickle");
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
    if (n < 8 && (static_cast<uint8_t>(bytes[n - 1]) & 0x80)) v |= ~uint64_t{0} << (8 * n);  // sign-extend
    return static_cast<int64_t>(v);
  }

  // --- stack
  void push(c10::IValue v) { stack_.push_back(Item::of(std::move(v))); }
  void push_mark() {
    marks_.push_back(stack_.size());
  }
  void push_global(const std::string& name) {
    Item i;
    i.kind = Item::Kind::Global;
    i.name = name;
    stack_.push_back(i);
  }
  Item pop() {
    if (stack_.empty()) throw TensorFileError("corrupt pickle: stack underflow");
    Item i = std::move(stack_.back());
    stack_.pop_back();
    return i;
  }
  Item& top() {
    if (stack_.empty()) throw TensorFileError("corrupt pickle: stack underflow");
    return stack_.back();
  }
  std::vector<Item> pop_to_mark() {
    if (marks_.empty()) throw TensorFileError("corrupt pickle: no mark");
    size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<Item> items(stack_.begin() + mark, stack_.end());
    stack_.resize(mark);
    return items;
  }
  Item memo_at(uint64_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) throw TensorFileError("corrupt pickle: unknown memo key");
    return it->second;
  }

  // Tuples keep their items too, so that REDUCE can see globals and storages
  // inside; objects in them become None (warned about when the tuple is used).
  void push_tuple(std::vector<Item> items) {
    std::vector<c10::IValue> values;
    for (const auto& i : items)
      values.push_back(i.kind == Item::Kind::Value ? i.value
                       : i.kind == Item::Kind::Storage ? c10::IValue(i.storage) : c10::IValue());
    Item t = Item::of(c10::ivalue::Tuple::create(std::move(values)));
    tuple_store_[t.value.toTuple().get()] = std::move(items);
    stack_.push_back(std::move(t));
  }
  const std::vector<Item>& tuple_items(const Item& tuple) {
    static const std::vector<Item> none;
    if (!tuple.value.isTuple()) return none;
    auto it = tuple_store_.find(tuple.value.toTuple().get());
    return it == tuple_store_.end() ? none : it->second;
  }

  c10::IValue to_value(const Item& item, const std::string& where) {
    switch (item.kind) {
      case Item::Kind::Value:
        for (const auto& inner : tuple_items(item))
          if (inner.kind == Item::Kind::Global || inner.kind == Item::Kind::Object) to_value(inner, where);
        return item.value;
      case Item::Kind::Storage: return item.storage;
      case Item::Kind::Mark: throw TensorFileError("corrupt pickle: stray mark");
      case Item::Kind::Global:
      case Item::Kind::Object:
        warn("skipped an object of type " + item.name + " in " + where +
             " (slt cannot represent it; tensors are unaffected)");
        return c10::IValue();
    }
    return c10::IValue();
  }

  void warn(const std::string& message) {
    if (std::find(warnings_.begin(), warnings_.end(), message) == warnings_.end()) warnings_.push_back(message);
  }

  void append(Item& list, const Item& value) {
    if (list.kind == Item::Kind::Value && list.value.isList()) {
      list.value.toList().push_back(to_value(value, "a list"));
    }  // appends to unknown objects are dropped with them
  }

  void set_item(Item& dict, const Item& key, const Item& value) {
    if (dict.kind != Item::Kind::Value || !dict.value.isGenericDict()) return;
    c10::IValue k = to_value(key, "a dict key");
    if (!(k.isString() || k.isInt() || k.isDouble() || k.isBool() || k.isNone())) {
      warn("skipped a dict entry whose key is not a string or a number");
      return;
    }
    dict.value.toGenericDict().insert_or_assign(k, to_value(value, "dict entry '" + (k.isString() ? k.toStringRef() : std::string("?")) + "'"));
  }

  void push_storage(const Item& pid) {
    const auto& items = tuple_items(pid);
    if (items.size() < 5 || !items[0].value.isString() || items[0].value.toStringRef() != "storage")
      throw TensorFileError("unsupported persistent id in pickle (not a tensor storage)");
    std::string storage_class = items[1].kind == Item::Kind::Global ? items[1].name : "";
    c10::ScalarType dtype = storage_dtype(storage_class);
    std::string key = items[2].value.toStringRef();
    int64_t numel = items[4].value.toInt();
    auto cached = storages_.find(key);
    Item storage;
    storage.kind = Item::Kind::Storage;
    if (cached != storages_.end()) {
      storage.storage = cached->second;
    } else {
      std::string record = prefix_ + "/data/" + key;
      at::Tensor t;
      if (lazy_) {
        uint64_t available = archive_.size_of(record);
        if (available < static_cast<uint64_t>(numel) * c10::elementSize(dtype))
          throw TensorFileError("tensor data '" + record + "' is shorter than its tensor (truncated file?)");
        t = at::empty({numel}, at::TensorOptions().dtype(dtype).device(at::kMeta));
        storage_keys_[t.storage().unsafeGetStorageImpl()] = record;
      } else {
        t = at::empty({numel}, at::TensorOptions().dtype(dtype));
        archive_.read_into(record, t.data_ptr(), static_cast<uint64_t>(numel) * c10::elementSize(dtype));
      }
      storages_[key] = t;
      storage.storage = t;
    }
    stack_.push_back(storage);
  }

  Item reduce(const Item& callable, const Item& args) {
    const std::string name = callable.kind == Item::Kind::Global ? callable.name : "<object>";
    const auto& items = tuple_items(args);
    auto arg = [&](size_t i) -> const Item& {
      if (i >= items.size()) throw TensorFileError("corrupt pickle: missing argument of " + name);
      return items[i];
    };
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      const Item& storage = arg(0);
      if (storage.kind != Item::Kind::Storage) throw TensorFileError("corrupt pickle: tensor without storage");
      int64_t offset = arg(1).value.toInt();
      std::vector<int64_t> size, stride;
      for (const auto& v : arg(2).value.toTupleRef().elements()) size.push_back(v.toInt());
      for (const auto& v : arg(3).value.toTupleRef().elements()) stride.push_back(v.toInt());
      int64_t needed = offset;
      for (size_t d = 0; d < size.size(); ++d) needed += size[d] > 0 ? (size[d] - 1) * stride[d] : 0;
      bool empty = std::any_of(size.begin(), size.end(), [](int64_t s) { return s == 0; });
      if (!empty && needed >= storage.storage.numel())
        throw TensorFileError("a tensor reaches past the end of its storage (corrupt file)");
      return Item::of(storage.storage.as_strided(size, stride, offset));
    }
    if (name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state")
      return Item::of(to_value(arg(0), "a parameter"));
    if (name == "collections.OrderedDict" || name == "builtins.dict" || name == "__builtin__.dict")
      return Item::of(c10::impl::GenericDict(c10::AnyType::get(), c10::AnyType::get()));
    if (name == "builtins.list" || name == "__builtin__.list") return Item::of(c10::impl::GenericList(c10::AnyType::get()));
    if (name == "_codecs.encode") {  // protocol 2 bytes: _codecs.encode(latin1 text, "latin1")
      std::string text = arg(0).value.toStringRef(), out;
      for (size_t i = 0; i < text.size();) {  // UTF-8 code points < 256 -> bytes
        unsigned char c = text[i];
        if (c < 0x80) { out += static_cast<char>(c); ++i; }
        else { out += static_cast<char>(((c & 0x1f) << 6) | (static_cast<unsigned char>(text[i + 1]) & 0x3f)); i += 2; }
      }
      return Item::of(out);
    }
    if (name == "numpy.dtype") {
      Item dtype;
      dtype.kind = Item::Kind::Object;
      dtype.name = "numpy.dtype";
      dtype.args = {arg(0).value};
      return dtype;
    }
    if (name == "numpy.core.multiarray.scalar" || name == "numpy._core.multiarray.scalar") {
      const Item& dtype = arg(0);
      std::string code = dtype.args.empty() ? "" : dtype.args[0].toStringRef();
      std::string bytes = arg(1).value.toStringRef();
      auto as = [&](auto zero) {
        decltype(zero) v{};
        if (bytes.size() != sizeof v) throw TensorFileError("corrupt numpy scalar");
        std::memcpy(&v, bytes.data(), sizeof v);
        return v;
      };
      if (code == "f8") return Item::of(as(double{}));
      if (code == "f4") return Item::of(static_cast<double>(as(float{})));
      if (code == "i8") return Item::of(as(int64_t{}));
      if (code == "i4") return Item::of(static_cast<int64_t>(as(int32_t{})));
      if (code == "b1") return Item::of(bytes.size() == 1 && bytes[0] != 0);
    }
    // TorchScript's pickler (torch::pickle_save) wraps typed containers.
    if (name.rfind("torch.jit._pickle.", 0) == 0 && name != "torch.jit._pickle.build_tensor_from_id" && !items.empty())
      return Item::of(to_value(arg(0), "a typed container"));
    if (name == "torch.device" && !items.empty()) return Item::of(to_value(arg(0), "a device"));
    Item object;
    object.kind = Item::Kind::Object;
    object.name = name;
    return object;
  }

  std::string_view p_;
  size_t pos_ = 0;
  const detail::ZipArchive& archive_;
  std::string prefix_;
  std::vector<std::string>& warnings_;
  std::vector<Item> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, Item> memo_;
  std::map<std::string, at::Tensor> storages_;
  std::map<const void*, std::vector<Item>> tuple_store_;
  bool lazy_ = false;
  std::map<const void*, std::string> storage_keys_;
};

}  // namespace

namespace {

void check_header(const std::string& path) {
  require_regular_file(path, "tensor file");
  std::ifstream probe(path, std::ios::binary);
  if (!probe) throw TensorFileError("cannot open '" + path + "': " + std::strerror(errno));
  char head[4] = {};
  probe.read(head, 4);
  if (probe.gcount() == 0) throw TensorFileError("'" + path + "' is empty");
  if (!detail::ZipArchive::looks_like_zip(std::string_view(head, probe.gcount()))) {
    if (static_cast<unsigned char>(head[0]) == 0x80)
      throw TensorFileError("'" + path + "' uses the legacy torch.save format (PyTorch < 1.6); "
                            "re-save it with torch.save(torch.load(path), path) in a recent PyTorch");
    throw TensorFileError("'" + path + "' is not a torch.save file (no zip header)");
  }
}

std::string find_pickle(const detail::ZipArchive& archive, const std::string& path) {
  std::string pickle_name;
  for (const auto& name : archive.names()) {
    size_t slash = name.find('/');
    if (slash != std::string::npos && name.substr(slash + 1) == "data.pkl") {
      pickle_name = name;
      break;
    }
  }
  if (pickle_name.empty()) throw TensorFileError("'" + path + "' has no data.pkl: not a torch.save file");
  std::string byteorder = pickle_name.substr(0, pickle_name.find('/')) + "/byteorder";
  if (archive.has(byteorder) && archive.read(byteorder) != "little")
    throw TensorFileError("'" + path + "' stores big-endian tensors; slt reads little-endian only");
  return pickle_name;
}

}  // namespace

c10::IValue load_pt(const std::string& path, std::vector<std::string>* warnings) {
  check_header(path);
  detail::ZipArchive archive(path);
  std::string pickle_name = find_pickle(archive, path);
  std::vector<std::string> local_warnings;
  try {
    std::string pickle = archive.read(pickle_name);
    Unpickler unpickler(pickle, archive, pickle_name.substr(0, pickle_name.find('/')),
                        local_warnings);
    c10::IValue value = unpickler.run();
    for (const auto& w : local_warnings) {
      if (warnings) warnings->push_back(w);
      else spdlog::warn("{}: {}", path, w);
    }
    return value;
  } catch (const TensorFileError& e) {
    throw TensorFileError("cannot read '" + path + "': " + e.what());
  } catch (const c10::Error& e) {
    throw TensorFileError("cannot read '" + path + "': unexpected content (" + e.what_without_backtrace() + ")");
  }
}

struct PtTensorFile::Impl {
  std::unique_ptr<detail::ZipArchive> archive;
  std::string record;
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;  // PyTorch saves views as they are (torch.save(x.t()))
  bool contiguous = true;
  c10::ScalarType dtype;
  int64_t offset_elements = 0;
};

PtTensorFile::PtTensorFile(const std::string& path) : impl_(std::make_shared<Impl>()) {
  check_header(path);
  impl_->archive = std::make_unique<detail::ZipArchive>(path);
  std::string pickle_name = find_pickle(*impl_->archive, path);
  std::vector<std::string> warnings;
  try {
    std::string pickle = impl_->archive->read(pickle_name);
    Unpickler unpickler(pickle, *impl_->archive, pickle_name.substr(0, pickle_name.find('/')), warnings, true);
    c10::IValue value = unpickler.run();
    if (!value.isTensor())
      throw TensorFileError("holds a " + value.tagKind() + ", expected a single tensor");
    at::Tensor meta = value.toTensor();
    impl_->contiguous = meta.is_contiguous();
    impl_->strides = meta.strides().vec();
    impl_->record = unpickler.storage_keys().at(meta.storage().unsafeGetStorageImpl());
    impl_->sizes = meta.sizes().vec();
    impl_->dtype = meta.scalar_type();
    impl_->offset_elements = meta.storage_offset();
  } catch (const TensorFileError& e) {
    throw TensorFileError("cannot read '" + path + "': " + e.what());
  } catch (const c10::Error& e) {
    throw TensorFileError("cannot read '" + path + "': unexpected content (" + e.what_without_backtrace() + ")");
  }
}

const std::vector<int64_t>& PtTensorFile::sizes() const { return impl_->sizes; }
c10::ScalarType PtTensorFile::dtype() const { return impl_->dtype; }

void PtTensorFile::read_rows(void* destination, int64_t rows) const {
  int64_t row_elements = 1;
  for (size_t d = 1; d < impl_->sizes.size(); ++d) row_elements *= impl_->sizes[d];
  uint64_t element = c10::elementSize(impl_->dtype);
  uint64_t offset = static_cast<uint64_t>(impl_->offset_elements) * element;
  if (impl_->contiguous) {
    uint64_t bytes = static_cast<uint64_t>(rows * row_elements) * element;
    impl_->archive->read_range(impl_->record, destination, offset, bytes);
    return;
  }
  // A view: read the storage span the rows reach (the unpickler checked it
  // lies within the storage), then lay the rows out densely.
  std::vector<int64_t> sizes = impl_->sizes;
  sizes[0] = rows;
  int64_t span = 1;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 0) return;
    span += (sizes[d] - 1) * impl_->strides[d];
  }
  at::Tensor storage = at::empty({span}, at::TensorOptions().dtype(impl_->dtype));
  impl_->archive->read_range(impl_->record, storage.data_ptr(), offset, static_cast<uint64_t>(span) * element);
  at::Tensor rows_view = storage.as_strided(sizes, impl_->strides).contiguous();
  std::memcpy(destination, rows_view.data_ptr(), static_cast<size_t>(rows * row_elements) * element);
}

void PtTensorFile::read_rows_as_float(float* destination, int64_t rows) const {
  if (rows == 0) return;
  if (dtype() == at::kFloat) {
    read_rows(destination, rows);
    return;
  }
  int64_t dim = sizes().size() > 1 ? sizes()[1] : 1;
  at::Tensor raw = at::empty({rows, dim}, at::TensorOptions().dtype(dtype()));
  read_rows(raw.data_ptr(), rows);
  at::Tensor converted = raw.to(at::kFloat);
  std::memcpy(destination, converted.data_ptr<float>(), sizeof(float) * rows * dim);
}

at::Tensor load_pt_tensor(const std::string& path) {
  c10::IValue value = load_pt(path);
  if (!value.isTensor())
    throw TensorFileError("'" + path + "' holds a " + value.tagKind() + ", expected a single tensor");
  return value.toTensor();
}

namespace {

void flatten_into(const c10::IValue& value, const std::string& prefix, NamedTensors& out) {
  if (value.isTensor()) {
    out.emplace_back(prefix, value.toTensor());
  } else if (value.isGenericDict()) {
    for (const auto& entry : value.toGenericDict()) {
      const c10::IValue& key = entry.key();
      std::string k = key.isString() ? key.toStringRef() : key.isInt() ? std::to_string(key.toInt()) : "?";
      flatten_into(entry.value(), prefix.empty() ? k : prefix + "." + k, out);
    }
  } else if (value.isList() || value.isTuple()) {
    const auto elements = value.isList() ? value.toList().vec() : value.toTupleRef().elements().vec();
    for (size_t i = 0; i < elements.size(); ++i)
      flatten_into(elements[i], prefix.empty() ? std::to_string(i) : prefix + "." + std::to_string(i), out);
  }
}

}  // namespace

NamedTensors flatten_tensors(const c10::IValue& value, const std::string& source, const std::string& prefix) {
  NamedTensors out;
  flatten_into(value, prefix, out);
  if (out.empty()) throw TensorFileError("'" + source + "' holds no tensors");
  return out;
}

void write_file_atomically(const std::string& path, const char* data, size_t size) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error("cannot write '" + tmp + "': " + std::strerror(errno));
  size_t written = 0;
  while (written < size) {
    ssize_t n = ::write(fd, data + written, size - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error("cannot write '" + tmp + "': " + std::strerror(err));
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw Error("cannot flush '" + tmp + "': " + std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    throw Error("cannot rename '" + tmp + "' to '" + path + "': " + std::strerror(errno));
  }
}

std::vector<char> serialize_pt(const c10::IValue& value) { return torch::jit::pickle_save(value); }

void save_pt(const std::string& path, const c10::IValue& value) {
  auto bytes = serialize_pt(value);
  write_file_atomically(path, bytes.data(), bytes.size());
}

}  // namespace slt
