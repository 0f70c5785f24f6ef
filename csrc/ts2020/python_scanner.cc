// The grammar's external scanner, compiled against the grammar's own tree_sitter/parser.h
// (ABI 11), as the official scorer's build did: scanner.cc includes <tree_sitter/parser.h>,
// which the include path would resolve to the runtime's header; including the grammar's
// first makes that second include a no-op (same include guard).
#include "python/tree_sitter/parser.h"
#include "python/scanner.cc"
