// wisp/nn/scratch.h (private to src/nn): scratch memory kept from one audio
// window to the next.
//
// A window's encoder activations and oneDNN workspace are tens of MB (~25
// for tiny, ~100 for large). Allocated per window, every page of them
// faults in again on first touch, each one cleared by the kernel
// (docs/design/model-loading.md, "Scratch memory", has the cost).
// whisper.cpp likewise keeps its compute buffers in its state. Blocks are
// 64-byte aligned (common/layout.h), as are the regions laid out in them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

#include "common/layout.h"

namespace wisp::nn {

// One growable, 64-byte aligned, uninitialised block.
class ScratchBlock {
 public:
  static constexpr size_t kAlign = AlignedLayout::kAlign;
  // At least `bytes` bytes; the old contents are not kept when it grows.
  uint8_t* reserve(size_t bytes) {
    if (bytes > size_) {
      p_.reset();
      size_ = 0;  // stays empty if the allocation below throws
      p_.reset(static_cast<uint8_t*>(::operator new[](bytes, std::align_val_t(kAlign))));
      size_ = bytes;
    }
    return p_.get();
  }
  size_t size() const { return size_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const { ::operator delete[](p, std::align_val_t(kAlign)); }
  };
  std::unique_ptr<uint8_t[], Free> p_;
  size_t size_ = 0;
};

// Blocks handed out one per concurrent user and taken back: as many blocks
// as calls ever ran at once, each as large as the largest call needed.
// Thread-safe.
class ScratchPool {
 public:
  // A block of `pool` for the lifetime of the lease: a free one, or a new
  // empty one if none is free.
  class Lease {
   public:
    explicit Lease(ScratchPool& pool) : pool_(pool), b_(pool.take()) {}
    ~Lease() { pool_.give_back(std::move(b_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ScratchBlock& operator*() const { return *b_; }
    ScratchBlock* operator->() const { return b_.get(); }

   private:
    ScratchPool& pool_;
    std::unique_ptr<ScratchBlock> b_;
  };

 private:
  std::unique_ptr<ScratchBlock> take() {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.empty()) return std::make_unique<ScratchBlock>();
    std::unique_ptr<ScratchBlock> b = std::move(free_.back());
    free_.pop_back();
    return b;
  }
  // From a destructor: a block that cannot be kept is freed instead.
  void give_back(std::unique_ptr<ScratchBlock> b) noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    try {
      free_.push_back(std::move(b));
    } catch (...) {
    }
  }
  std::mutex mu_;
  std::vector<std::unique_ptr<ScratchBlock>> free_;
};

}  // namespace wisp::nn
