/* client: libtrident's public entry points (see include/trident/client.h). */
#include "trident/client.h"

const char *trident_version(void)
{
    return TRIDENT_VERSION;
}
