/* Lookups in the tables tools/embed.c generates (see embedded.h). */
#include "util/embedded.h"

#include <string.h>

int sol_embedded_count(const sol_embedded_file *table)
{
    int n = 0;
    while (table[n].name)
        n++;
    return n;
}

const char *sol_embedded_find(const sol_embedded_file *table, const char *name)
{
    for (int i = 0; table[i].name; i++)
        if (strcmp(table[i].name, name) == 0)
            return table[i].text;
    return NULL;
}
