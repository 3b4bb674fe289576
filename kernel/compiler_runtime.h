// SPDX-License-Identifier: MIT
// Declarations of the compiler-runtime helpers defined in compiler_runtime.cpp (the compiler
// knows them already; declaring them keeps -Wmissing-declarations meaningful).
#pragma once

extern "C" {
unsigned __int128 __udivti3(unsigned __int128 numerator, unsigned __int128 denominator);
unsigned __int128 __umodti3(unsigned __int128 numerator, unsigned __int128 denominator);
__int128 __divti3(__int128 numerator, __int128 denominator);
__int128 __modti3(__int128 numerator, __int128 denominator);
}
