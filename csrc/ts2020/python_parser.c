// The grammar, compiled against its own tree_sitter/parser.h (ABI 11), as the official
// scorer's build did: parser.c includes <tree_sitter/parser.h>, which the include path
// would resolve to the runtime's (newer) header; including the grammar's first makes that
// second include a no-op (same include guard).
#include "python/tree_sitter/parser.h"
#include "python/parser.c"
