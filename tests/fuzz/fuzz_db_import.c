/* `sol db import` of a file from anywhere into a fresh database: refused
 * in one error or merged, never a crash. */
#include "tests/fuzz/fuzz.h"

#include "db/db.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *src = fuzz_file(data, size, "import.db");
    char target[64];
    snprintf(target, sizeof target, "/tmp/sol-fuzz-%d.target.db", (int)getpid());
    unlink(target);
    sol_db *db = NULL;
    sol_err err = {0};
    if (sol_db_open(target, &db, &err))
        abort(); /* a new file always opens */
    int added = 0;
    sol_db_import(db, src, &added, &err);
    sol_db_close(db);
    return 0;
}
