// SPDX-License-Identifier: MIT
// IntrusiveList: a doubly linked list threaded through two pointer members of its elements - the
// one list the allocators use for what they keep inside the memory they manage (a class's
// partial slabs, checked mode's live blocks and quarantine, the live region heaps), so nothing
// is allocated to link anything.
//
// Owns nothing; the caller serialises every call (the lock of whatever holds the list).
// Invariants, for every element e on the list:
//   e.prev == null  <=>  e == front();   e.next == null  <=>  e is the last element
//   e.prev->next == e (when e.prev);     e.next->prev == e (when e.next)
//   Ends::FrontAndBack: back() is the last element, null exactly when front() is
// An element is on at most one list through the same two members.
#pragma once

#include <stddef.h>

namespace bedrock {

namespace list_detail {
template <bool kCondition, class IfTrue, class IfFalse>
struct Select {
    using Type = IfTrue;
};
template <class IfTrue, class IfFalse>
struct Select<false, IfTrue, IfFalse> {
    using Type = IfFalse;
};
struct Nothing {};
} // namespace list_detail

// Whether a list also keeps its last element (for FIFO use: push_back, back()).
enum class Ends { FrontOnly, FrontAndBack };

template <class T, T* T::*Prev, T* T::*Next, Ends kEnds = Ends::FrontOnly>
class IntrusiveList {
public:
    [[nodiscard]] T* front() const { return m_front; }
    [[nodiscard]] T* back() const requires(kEnds == Ends::FrontAndBack) { return m_back; }
    [[nodiscard]] bool empty() const { return m_front == nullptr; }
    [[nodiscard]] static T* next(const T& element) { return element.*Next; }

    // O(1).
    void push_front(T& element) {
        element.*Prev = nullptr;
        element.*Next = m_front;
        if (m_front != nullptr) {
            m_front->*Prev = &element;
        } else if constexpr (kEnds == Ends::FrontAndBack) {
            m_back = &element;
        }
        m_front = &element;
    }

    // O(1).
    void push_back(T& element) requires(kEnds == Ends::FrontAndBack) {
        element.*Next = nullptr;
        element.*Prev = m_back;
        if (m_back != nullptr) {
            m_back->*Next = &element;
        } else {
            m_front = &element;
        }
        m_back = &element;
    }

    // Unlinks `element` (on this list). O(1).
    void remove(T& element) {
        T* prev = element.*Prev;
        T* after = element.*Next;
        if (prev != nullptr) {
            prev->*Next = after;
        } else {
            m_front = after;
        }
        if (after != nullptr) {
            after->*Prev = prev;
        } else if constexpr (kEnds == Ends::FrontAndBack) {
            m_back = prev;
        }
        element.*Prev = nullptr;
        element.*Next = nullptr;
    }

    // Makes `element` (on this list) its front: the elements before it leave the list, their
    // links left as they are. O(1).
    void drop_before(T& element) {
        element.*Prev = nullptr;
        m_front = &element;
    }

    // Whether the links agree with the invariants above, and the list has at most `limit`
    // elements (a bound that also ends a walk of a damaged, cyclic list). O(elements).
    [[nodiscard]] bool is_consistent(size_t limit) const {
        const T* prev = nullptr;
        size_t count = 0;
        for (const T* element = m_front; element != nullptr; element = element->*Next) {
            if (element->*Prev != prev || ++count > limit) {
                return false;
            }
            prev = element;
        }
        if constexpr (kEnds == Ends::FrontAndBack) {
            return m_back == prev;
        }
        return true;
    }

private:
    T* m_front = nullptr;
    [[no_unique_address]]
    typename list_detail::Select<kEnds == Ends::FrontAndBack, T*, list_detail::Nothing>::Type
        m_back{};
};

} // namespace bedrock
