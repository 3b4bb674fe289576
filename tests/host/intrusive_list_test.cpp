// SPDX-License-Identifier: MIT
// IntrusiveList (support/intrusive_list.h): random pushes, removals and drop_before() on lists
// with one and two ends, checked against a model after every operation.
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <random>
#include <vector>

#include "support/intrusive_list.h"

namespace bedrock {
namespace {

struct Node {
    Node* prev = nullptr;
    Node* next = nullptr;
};

template <class List>
std::vector<Node*> elements_of(const List& list) {
    std::vector<Node*> elements;
    for (Node* node = list.front(); node != nullptr; node = List::next(*node)) {
        elements.push_back(node);
    }
    return elements;
}

template <Ends kEnds>
void run_against_model(unsigned seed) {
    using List = IntrusiveList<Node, &Node::prev, &Node::next, kEnds>;
    std::vector<Node> nodes(64);
    std::vector<bool> listed(nodes.size(), false);
    std::deque<Node*> model;
    List list;
    std::mt19937 random(seed);
    for (int step = 0; step < 20000; ++step) {
        const size_t index = random() % nodes.size();
        Node& node = nodes[index];
        const unsigned operation = random() % 4;
        if (!listed[index] && operation == 0) {
            list.push_front(node);
            model.push_front(&node);
            listed[index] = true;
        } else if (!listed[index] && operation == 1) {
            if constexpr (kEnds == Ends::FrontAndBack) {
                list.push_back(node);
                model.push_back(&node);
                listed[index] = true;
            }
        } else if (listed[index] && operation == 2) {
            list.remove(node);
            model.erase(std::find(model.begin(), model.end(), &node));
            listed[index] = false;
        } else if (listed[index] && operation == 3 && random() % 8 == 0) {
            list.drop_before(node);
            while (model.front() != &node) {
                listed[model.front() - nodes.data()] = false;
                model.pop_front();
            }
        }
        ASSERT_TRUE(list.is_consistent(nodes.size())) << "step " << step;
        ASSERT_EQ(elements_of(list), std::vector<Node*>(model.begin(), model.end()))
            << "step " << step;
        if constexpr (kEnds == Ends::FrontAndBack) {
            ASSERT_EQ(list.back(), model.empty() ? nullptr : model.back()) << "step " << step;
        }
    }
}

TEST(IntrusiveList, FrontOnlyMatchesAModel) {
    for (unsigned seed = 1; seed <= 3; ++seed) {
        run_against_model<Ends::FrontOnly>(seed);
    }
}

TEST(IntrusiveList, FrontAndBackMatchesAModel) {
    for (unsigned seed = 1; seed <= 3; ++seed) {
        run_against_model<Ends::FrontAndBack>(seed);
    }
}

// drop_before() leaves the dropped elements' links as they were: a caller that cannot follow
// them (checked mode's damaged quarantine front) never has them written.
TEST(IntrusiveList, DropBeforeLeavesTheDroppedElementsAlone) {
    IntrusiveList<Node, &Node::prev, &Node::next, Ends::FrontAndBack> list;
    Node nodes[3];
    for (Node& node : nodes) {
        list.push_back(node);
    }
    list.drop_before(nodes[2]);
    EXPECT_EQ(list.front(), &nodes[2]);
    EXPECT_EQ(list.back(), &nodes[2]);
    EXPECT_EQ(nodes[2].prev, nullptr);
    EXPECT_EQ(nodes[0].next, &nodes[1]);
    EXPECT_EQ(nodes[1].prev, &nodes[0]);
    EXPECT_EQ(nodes[1].next, &nodes[2]);
    EXPECT_TRUE(list.is_consistent(3));
}

} // namespace
} // namespace bedrock
