// ByteBuffer: a std::vector of bytes whose resize() does not zero what it adds. For buffers that
// are filled right after they are sized (a chunk sealed into its output, for instance), the
// zero-fill of std::vector<uint8_t> is a wasted pass over every byte.
#pragma once

#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

namespace cairn {

// std::allocator, except that value-initialization (`resize(n)`, `vector(n)`) leaves trivially
// constructible elements uninitialized (default-initialization). Construction with arguments is
// unchanged.
template <class T>
struct DefaultInitAllocator : std::allocator<T> {
  using std::allocator<T>::allocator;
  template <class U>
  struct rebind {
    using other = DefaultInitAllocator<U>;
  };
  template <class U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    std::allocator_traits<std::allocator<T>>::construct(static_cast<std::allocator<T>&>(*this), p,
                                                        std::forward<Args>(args)...);
  }
};

// Bytes whose new elements are uninitialized after resize(): write them before reading them.
using ByteBuffer = std::vector<uint8_t, DefaultInitAllocator<uint8_t>>;

}  // namespace cairn
