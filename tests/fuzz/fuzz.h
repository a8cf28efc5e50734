/*
 * fuzz.h - what the libFuzzer targets of tests/fuzz/ share: a check that
 * aborts (so libFuzzer saves the input) whatever NDEBUG says, and copies of
 * the input as NUL-terminated strings.
 */
#ifndef TRACKGATE_FUZZ_H
#define TRACKGATE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A property the code under test promises: on failure, say which and abort. */
#define FUZZ_CHECK(cond, ...)                                                                      \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: ", __FILE__, __LINE__,      \
				#cond);                                                            \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* A malloc'd NUL-terminated copy of data[0..size) (stops at an inner NUL when read as a string). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		abort();
	if (size != 0)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/*
 * Splits the input like strsep on sep: the next field in *field (a pointer
 * into the input, not NUL-terminated) and its length; the input is advanced
 * past the separator.  The last field runs to the end of the input.
 */
static inline void fuzz_next_field(const uint8_t **data, size_t *size, uint8_t sep,
				   const uint8_t **field, size_t *len)
{
	const uint8_t *end = *size != 0 ? memchr(*data, sep, *size) : NULL;

	*field = *data;
	if (end == NULL) {
		*len = *size;
		*data += *size;
		*size = 0;
		return;
	}
	*len = (size_t)(end - *data);
	*size -= *len + 1;
	*data = end + 1;
}

/* True when the fixed-size char array holds a NUL: what every API here promises. */
#define FUZZ_TERMINATED(array) (memchr((array), '\0', sizeof(array)) != NULL)

#endif
