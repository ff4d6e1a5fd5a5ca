/* trident/client.h: libtrident, the C client library of Trident.
 *
 * libtrident lets a program submit tasks to a Trident broker (tridentd) and
 * wait for their results. Every public name starts with trident_ (or
 * TRIDENT_ for macros); nothing else is exported from libtrident.so.
 * Functions marked TRIDENT_API are the whole ABI: the library is built with
 * hidden visibility and a linker version script, so the internal modules it
 * carries (the wire codec, buffers, logging) stay out of its symbol table.
 *
 * For now the library only reports its version; the blocking and
 * asynchronous task API comes next. Thread-safe.
 */
#ifndef TRIDENT_CLIENT_H
#define TRIDENT_CLIENT_H

#if defined(TRIDENT_BUILDING_LIBRARY) && defined(__GNUC__)
#define TRIDENT_API __attribute__((visibility("default")))
#else
#define TRIDENT_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* trident_version: the version of the library actually loaded, as
 * "MAJOR.MINOR.PATCH". The string is static: never free it. */
TRIDENT_API const char *trident_version(void);

#ifdef __cplusplus
}
#endif

#endif
