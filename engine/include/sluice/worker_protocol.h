// Framing of the messages between the engine and its worker processes.
//
// A frame is: 4-byte little-endian length N, then N bytes: one type byte and a payload
// (JSON text). Frames larger than kMaxFrameBytes are refused as corrupt. Internal: shared by
// the engine, its workers and the daemon's model server, never by plugins.
#ifndef SLUICE_ENGINE_WORKER_PROTOCOL_H_
#define SLUICE_ENGINE_WORKER_PROTOCOL_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::protocol {

inline constexpr uint32_t kMaxFrameBytes = 64u << 20;

enum class Type : uint8_t {
  // worker -> engine
  kHello = 1,      // {"pid": N}
  kScanning = 2,   // {"file": "..."}: about to load this library (names the culprit of a crash)
  kCatalog = 3,    // PluginCatalog::ToJson()
  kLog = 4,        // {"level": 1, "text": "..."}
  kMetric = 5,     // {"name": "...", "value": 1.5, "step": -1}
  kOutput = 6,     // {"name": "...", "kind": "file|dir|value", "path"|"value": ...}
  kResult = 7,     // {"key": "...", "code": 0|1|2, "message": "...", "started": bool}
                   // Tries run in the order sent; the next one starts when this one ends.
  kHeartbeat = 8,  // {}
  kCall = 9,       // {"id": N, "method": "...", "request": {...}}: the step waits for the reply
  // serving worker -> engine
  kLoaded = 10,     // {"id": N, "ok": bool, "error": "...", "seconds": 0.01}
  kPredicted = 11,  // "<id> <code>\n<response>" (not JSON: the response passes through as is)
  kRevoked = 12,    // {"key": "...", "revoked": bool}: the answer to kRevoke; true when the try
                    // had not started and never will here, false when it has started
  // engine -> worker
  kScan = 20,      // {"dirs": [...]}
  kRun = 21,       // {"key": "...", "file": "...", "step": "...", "request": {...}}
  kCancel = 22,    // {"key": "..."}
  kShutdown = 23,  // {}
  kReply = 24,     // {"id": N, "ok": bool, "result": ... | "error": "..."}
  // engine -> serving worker
  kLoadModel = 25,    // {"id": N, "slot": "...", "file": "...", "predictor": "...", "dir": "...",
                      //  "model": "...", "version": N}
  kPredict = 26,      // "<id> <slot>\n<request body>"
  kUnloadModel = 27,  // {"slot": "..."}
  // engine -> worker
  kRevoke = 28,  // {"key": "..."}: give a try back if it has not started (work stealing)
};

inline std::string EncodeFrame(Type type, std::string_view payload) {
  const uint32_t n = static_cast<uint32_t>(payload.size() + 1);
  std::string frame;
  frame.reserve(4 + n);
  for (int i = 0; i < 4; ++i) frame.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  frame.push_back(static_cast<char>(type));
  frame.append(payload);
  return frame;
}

// Accumulates bytes and yields complete frames.
class FrameDecoder {
 public:
  void Append(const char* data, size_t size) { buffer_.append(data, size); }

  // Extracts the next complete frame. Returns false when more bytes are needed or the stream
  // is corrupt (then corrupt() is true).
  bool Next(Type* type, std::string* payload) {
    if (corrupt_) return false;
    if (buffer_.size() - offset_ < 4) return Compact();
    const auto* p = reinterpret_cast<const unsigned char*>(buffer_.data() + offset_);
    const uint32_t n = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
    if (n == 0 || n > kMaxFrameBytes) {
      corrupt_ = true;
      return false;
    }
    if (buffer_.size() - offset_ < 4 + static_cast<size_t>(n)) return Compact();
    *type = static_cast<Type>(buffer_[offset_ + 4]);
    payload->assign(buffer_, offset_ + 5, n - 1);
    offset_ += 4 + n;
    return true;
  }
  bool corrupt() const { return corrupt_; }

 private:
  bool Compact() {
    if (offset_ > 0) {
      buffer_.erase(0, offset_);
      offset_ = 0;
    }
    return false;
  }
  std::string buffer_;
  size_t offset_ = 0;
  bool corrupt_ = false;
};

}  // namespace sluice::protocol

#endif  // SLUICE_ENGINE_WORKER_PROTOCOL_H_
