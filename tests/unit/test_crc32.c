/* crc32_short gives zlib's crc32 values (the modseq logs on disk were written with zlib's). */
#include "crc32.h"
#include "t.h"

#include <stdlib.h>
#include <zlib.h>

static void test_known_value(void)
{
	/* the CRC-32 check value of "123456789" */
	T_EQ(crc32_short(0, "123456789", 9), 0xcbf43926u);
	T_EQ(crc32_short(0, "", 0), 0);
}

static void test_same_as_zlib(void)
{
	unsigned char buf[300];
	int bad = 0;

	srand(7);
	for (int round = 0; round < 2000; round++) {
		size_t len = (size_t)(rand() % (int)sizeof(buf)), off = (size_t)(rand() % 8);
		uint32_t init = (uint32_t)rand() * 2654435761u;
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = (unsigned char)rand();
		if (off + len > sizeof(buf))
			len = sizeof(buf) - off;
		if (crc32_short(init, buf + off, len) != (uint32_t)crc32(init, buf + off, (uInt)len))
			bad++;
	}
	T_EQ(bad, 0);
}

int main(void)
{
	T_RUN(test_known_value);
	T_RUN(test_same_as_zlib);
	return t_done();
}
