# SPDX-License-Identifier: MIT
# Bedrock's version, in one place: the root project() and alloc/ on its own (add_subdirectory of
# alloc/ alone) both read it; it becomes bedrock/version.h and the package's version file.
set(BEDROCK_VERSION 0.5.0)
