// Fuzz target: the worker channel's frame decoder, fed the input in chunks whose sizes come
// from the input, with every payload parsed as the engine parses a worker's frames.
#include <cstddef>
#include <cstdint>
#include <string>

#include "sluice/json_limits.h"
#include "sluice/worker_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t chunk = 1 + data[0] % 64;
  sluice::protocol::FrameDecoder decoder;
  size_t consumed = 0;
  for (size_t at = 1; at < size; at += chunk) {
    const size_t n = std::min(chunk, size - at);
    decoder.Append(reinterpret_cast<const char*>(data) + at, n);
    sluice::protocol::Type type;
    std::string payload;
    while (decoder.Next(&type, &payload)) {
      consumed += payload.size() + 5;
      if (consumed > size) __builtin_trap();  // no frame is made of bytes never given
      (void)sluice::ParseJson(payload, "a frame", sluice::kFrameJsonLimits);
    }
    if (decoder.corrupt()) break;
  }
  // A frame that is encoded decodes to itself.
  const std::string payload(reinterpret_cast<const char*>(data), size);
  sluice::protocol::FrameDecoder again;
  const std::string frame = sluice::protocol::EncodeFrame(sluice::protocol::Type::kLog, payload);
  again.Append(frame.data(), frame.size());
  sluice::protocol::Type type;
  std::string out;
  if (!again.Next(&type, &out) || out != payload || type != sluice::protocol::Type::kLog) {
    __builtin_trap();
  }
  return 0;
}
